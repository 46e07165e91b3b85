"""The side effects an operation is made of, as data that survives a crash."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from commands.engine.base_fingerprints import fingerprint, with_base_fingerprints
from commands.drivers.process import ProcessResult
from commands.drivers.qemu_img import QemuImg, QemuImgError
from commands.drivers.qmp import Qmp
from commands.drivers.xl import Xl
from commands.state.atomic_files import atomic_write, remove_file, sha256_file
from commands.state.memory_images import with_memory_digest
from commands.state.snapshot_metadata import metadata_path, remove_metadata, write_metadata
from commands.engine.progress import Watch, quiet

Params = dict[str, Any]


@dataclass(frozen=True)
class StepSpec:
    """One planned side effect: which action, on what, with which parameters.

    A step is ``StepSpec(action, target, params)``; the plan of steps is recorded when
    an operation starts. Each action knows how to do itself, undo itself, and *probe*
    reality to tell whether it happened, so ``recover`` can finish or undo an
    operation whose process died, from the ledger alone. Every ``do`` and ``undo`` is
    idempotent: running it twice leaves the same state.
    """

    action: str
    target: str
    params: Params = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "target": self.target, "params": self.params}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepSpec:
        return cls(str(data["action"]), str(data["target"]), dict(data.get("params", {})))


class Evidence(NamedTuple):
    """What a probe saw: ``happened`` is None when reality cannot tell."""

    happened: bool | None
    detail: dict[str, Any]


@dataclass
class Tools:
    """The drivers actions use: qemu-img, xl, a QMP client per socket, a progress display.

    ``clock`` holds monotonic times of this process's pause and unpause (for the
    paused time recorded in the unpause step's result).
    """

    qemu_img: QemuImg
    xl: Xl = field(default_factory=Xl)
    qmp: Callable[[str], Qmp] = Qmp
    watch: Watch = quiet
    clock: dict[str, float] = field(default_factory=dict)


class Action:
    """Base of every action; subclasses set ``name`` and override what applies."""

    name: ClassVar[str] = ""
    reversible: ClassVar[bool] = True
    best_effort: ClassVar[bool] = False

    def argv(self, p: Params, tools: Tools) -> list[str]:
        raise NotImplementedError

    def undo_argv(self, p: Params, tools: Tools) -> list[str]:
        return []

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        raise NotImplementedError

    def undo(self, p: Params, tools: Tools) -> ProcessResult:
        raise NotImplementedError(f"{self.name} cannot be undone")

    def probe(self, p: Params, tools: Tools) -> Evidence:
        return Evidence(None, {"reason": "not observable"})


class TagCreate(Action):
    """``qemu-img snapshot -c TAG PATH``; undone by deleting the tag if present."""

    name = "internal-snapshot-create"

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return [tools.qemu_img.binary, "snapshot", "-c", p["tag"], p["path"]]

    def undo_argv(self, p: Params, tools: Tools) -> list[str]:
        return [tools.qemu_img.binary, "snapshot", "-d", p["tag"], p["path"]]

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        return tools.qemu_img.snapshot_create(p["path"], p["tag"])

    def undo(self, p: Params, tools: Tools) -> ProcessResult:
        return _delete_tag_if_present(tools.qemu_img, p["path"], p["tag"])

    def probe(self, p: Params, tools: Tools) -> Evidence:
        return _tag_evidence(tools.qemu_img, p["path"], p["tag"], present_means_done=True)


class SafetyTagCreate(TagCreate):
    """The temporary tag a revert takes first, to put a disk back if needed."""

    name = "safety-tag-create"


class TagApply(Action):
    """Revert a disk to TAG by its current ID; undone by applying the safety tag."""

    name = "internal-snapshot-apply"

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return [tools.qemu_img.binary, "snapshot", "-a", f"<id of {p['tag']}>", p["path"]]

    def undo_argv(self, p: Params, tools: Tools) -> list[str]:
        return [tools.qemu_img.binary, "snapshot", "-a", f"<id of {p['safety']}>", p["path"]]

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        return tools.qemu_img.snapshot_apply(p["path"], p["tag"])

    def undo(self, p: Params, tools: Tools) -> ProcessResult:
        return tools.qemu_img.snapshot_apply(p["path"], p["safety"])


class TagDelete(Action):
    """``qemu-img snapshot -d TAG PATH``: cannot be taken back."""

    name = "internal-snapshot-delete"
    reversible = False

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return [tools.qemu_img.binary, "snapshot", "-d", p["tag"], p["path"]]

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        result = _delete_tag_if_present(tools.qemu_img, p["path"], p["tag"])
        # the image may be the base of an external snapshot: its new fingerprint
        # (``commands.engine.base_fingerprints``) tells ``check`` this change was xlsnap's own
        result.detail["fingerprints"] = {p["path"]: fingerprint(p["path"])}
        return result

    def probe(self, p: Params, tools: Tools) -> Evidence:
        seen = _tag_evidence(tools.qemu_img, p["path"], p["tag"], present_means_done=False)
        # a delete rolls forward; one that already happened is not run again
        return Evidence(seen.happened, {**seen.detail,
                                        "fingerprints": {p["path"]: fingerprint(p["path"])}})


class SafetyTagDelete(TagDelete):
    """Removing a revert's safety tag: a clean-up whose failure fails nothing."""

    name = "safety-tag-delete"
    best_effort = True


class RenamedTagDelete(TagDelete):
    """A rename's last step: the old tag, once the new one holds the same disk state.

    A failure fails nothing (the snapshot is whole under its new name); ``check`` then
    shows the old tag as one the ledger does not know.
    """

    name = "renamed-tag-delete"
    best_effort = True


class FileRename(Action):
    """``rename OLD NEW`` of a snapshot's own file (its memory image); undone by renaming
    it back. A NEW that exists already is refused, never replaced."""

    name = "file-rename"

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return ["rename", p["old"], p["new"]]

    def undo_argv(self, p: Params, tools: Tools) -> list[str]:
        return ["rename", p["new"], p["old"]]

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        if os.path.lexists(p["new"]):
            raise FileExistsError(f"{p['new']} exists already")
        os.link(p["old"], p["new"])            # never replaces: link, then drop the old name
        os.unlink(p["old"])
        return ProcessResult(self.argv(p, tools), 0)

    def undo(self, p: Params, tools: Tools) -> ProcessResult:
        if os.path.lexists(p["new"]) and not os.path.lexists(p["old"]):
            os.link(p["new"], p["old"])
            os.unlink(p["new"])
        return ProcessResult(self.undo_argv(p, tools), 0)

    def probe(self, p: Params, tools: Tools) -> Evidence:
        return Evidence(os.path.lexists(p["new"]) and not os.path.lexists(p["old"]),
                        {"old": os.path.lexists(p["old"]), "new": os.path.lexists(p["new"])})


def like_base(base: str, overlay: str) -> dict[str, Any]:
    """Give a new overlay its base image's owner and mode (the overlay holds what the guest
    writes from now on: as secret as the base). Returns them, for the step's result."""
    st = os.stat(base)
    ours = os.stat(overlay, follow_symlinks=False)
    if (ours.st_uid, ours.st_gid) != (st.st_uid, st.st_gid):
        os.chown(overlay, st.st_uid, st.st_gid, follow_symlinks=False)
    os.chmod(overlay, st.st_mode & 0o777)
    return {"mode": f"{st.st_mode & 0o777:04o}", "uid": st.st_uid, "gid": st.st_gid}


class OverlayCreate(Action):
    """A qcow2 overlay on top of a disk image; undone by removing the overlay."""

    name = "overlay-create"

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return [tools.qemu_img.binary, "create", "-q", "-f", "qcow2", "-F", p["base_format"],
                "-b", p["base"], p["overlay"]]

    def undo_argv(self, p: Params, tools: Tools) -> list[str]:
        return ["unlink", p["overlay"]]

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        if os.path.lexists(p["overlay"]):
            raise FileExistsError(f"overlay {p['overlay']} exists already")
        old_umask = os.umask(0o077)  # never readable by others before it has the base's mode
        try:
            result = tools.qemu_img.create_overlay(p["base"], p["base_format"], p["overlay"])
        finally:
            os.umask(old_umask)
        result.detail.update(like_base(p["base"], p["overlay"]))
        return result

    def undo(self, p: Params, tools: Tools) -> ProcessResult:
        removed = remove_file(Path(p["overlay"]))
        return ProcessResult(["unlink", p["overlay"]], 0, detail={"removed": removed})

    def probe(self, p: Params, tools: Tools) -> Evidence:
        exists = os.path.lexists(p["overlay"])
        return Evidence(exists, {"overlay_exists": exists})


class ConfigRewrite(Action):
    """Replace the domain config by ``new_text``, keeping the old one as ``backup``."""

    name = "config-rewrite"

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return ["rewrite", p["path"], "backup", p["backup"]]

    def undo_argv(self, p: Params, tools: Tools) -> list[str]:
        return ["restore", p["path"], "from", p["backup"]]

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        path, backup = Path(p["path"]), Path(p["backup"])
        if sha256_file(path) != p["sha256_before"]:
            raise OSError(f"{path} changed since the snapshot was planned")
        old = path.read_bytes()
        atomic_write(backup, old, p["mode"])
        atomic_write(path, p["new_text"].encode(), p["mode"])
        return ProcessResult(self.argv(p, tools), 0)

    def undo(self, p: Params, tools: Tools) -> ProcessResult:
        path, backup = Path(p["path"]), Path(p["backup"])
        current = sha256_file(path)
        if current == p["sha256_after"]:
            if not backup.exists() or sha256_file(backup) != p["sha256_before"]:
                raise OSError(f"backup {backup} is missing or altered; cannot restore {path}")
            atomic_write(path, backup.read_bytes(), p["mode"])
        elif current != p["sha256_before"]:
            raise OSError(f"{path} was changed by someone else; not restoring it")
        remove_file(backup)
        return ProcessResult(self.undo_argv(p, tools), 0)

    def probe(self, p: Params, tools: Tools) -> Evidence:
        current = sha256_file(p["path"]) if os.path.exists(p["path"]) else None
        backup = os.path.exists(p["backup"])
        detail = {"sha256": current, "backup_exists": backup}
        if current == p["sha256_after"]:
            return Evidence(True, detail)
        if current == p["sha256_before"]:
            return Evidence(False if not backup else None, detail)
        return Evidence(None, detail)


class MetadataWrite(Action):
    """The snapshot's libxl-json file; undone by removing it.

    A record naming a memory image whose digest is not known yet (it is taken after
    the domain runs again) gets it here: sha256 and size, also in the step's result.
    """

    name = "metadata-write"

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return ["write", str(metadata_path(Path(p["dir"]), p["name"]))]

    def undo_argv(self, p: Params, tools: Tools) -> list[str]:
        return ["unlink", str(metadata_path(Path(p["dir"]), p["name"]))]

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        record = with_base_fingerprints(with_memory_digest(p["record"]))
        result = write_metadata(Path(p["dir"]), p["name"], record)
        if record.get("memory_sha256"):
            result.detail.update(memory_sha256=record["memory_sha256"],
                                 memory_size=record.get("memory_size"))
        return result

    def undo(self, p: Params, tools: Tools) -> ProcessResult:
        return remove_metadata(Path(p["dir"]), p["name"])

    def probe(self, p: Params, tools: Tools) -> Evidence:
        exists = metadata_path(Path(p["dir"]), p["name"]).exists()
        return Evidence(exists, {"exists": exists})


class MetadataRemove(MetadataWrite):
    """Removing the snapshot's libxl-json file; undone by writing it again."""

    name = "metadata-remove"

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return super().undo_argv(p, tools)

    def undo_argv(self, p: Params, tools: Tools) -> list[str]:
        return super().argv(p, tools)

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        return super().undo(p, tools)

    def undo(self, p: Params, tools: Tools) -> ProcessResult:
        return super().do(p, tools)

    def probe(self, p: Params, tools: Tools) -> Evidence:
        seen = super().probe(p, tools)
        return Evidence(not seen.happened, seen.detail)


#: The actions of this module, for ``commands.engine.step_registry``.
DISK_ACTIONS: tuple[Action, ...] = (
    TagCreate(), SafetyTagCreate(), TagApply(), TagDelete(), SafetyTagDelete(),
    RenamedTagDelete(), FileRename(),
    OverlayCreate(), ConfigRewrite(), MetadataWrite(), MetadataRemove(),
)


def _delete_tag_if_present(qemu_img: QemuImg, path: str, tag: str) -> ProcessResult:
    """Delete ``tag``; a tag that is not there (any more) counts as deleted.

    The delete is tried first and ``info`` read only when it fails (a tag is nearly always
    there: one qemu-img run saved per disk)."""
    try:
        return qemu_img.snapshot_delete(path, tag)
    except QemuImgError:
        # read without a lock: an image another process has open may still lack the tag
        if qemu_img.info(path, force_share=True).find(tag):
            raise
        return ProcessResult([qemu_img.binary, "snapshot", "-d", tag, path], 0,
                             detail={"absent": True})


def _tag_evidence(qemu_img: QemuImg, path: str, tag: str, present_means_done: bool) -> Evidence:
    if not os.path.exists(path):
        return Evidence(None, {"image_missing": path})
    count = len(qemu_img.info(path).find(tag))
    present = count > 0
    return Evidence(present if present_means_done else not present, {"tags_named": count})
