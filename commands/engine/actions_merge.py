"""Steps that merge and drop the images of external snapshots (delete, revert).

Each step's result carries the new fingerprint of the images it wrote
(``commands.engine.base_fingerprints``), so ``check`` knows the change was xlsnap's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from commands.engine.actions import Action, Evidence, Params, Tools, like_base
from commands.engine.base_fingerprints import fingerprints
from commands.drivers.process import ProcessResult
from commands.state.atomic_files import allocated
from commands.state.snapshot_metadata import libxl_record, metadata_path, write_metadata


def _with_fingerprints(result: ProcessResult, *paths: str) -> ProcessResult:
    result.detail["fingerprints"] = fingerprints(*paths)
    return result


def _backing_evidence(tools: Tools, path: str, wanted: str | None) -> Evidence:
    if not os.path.exists(path):
        return Evidence(None, {"image_missing": path})
    backing = tools.qemu_img.info(path, force_share=True).backing_file
    return Evidence(backing == wanted, {"backing": backing,
                                        "fingerprints": fingerprints(path)})


class ImageCommit(Action):
    """``qemu-img commit -d -b BASE TOP``: TOP's data into BASE; BASE's old data is lost."""

    name = "image-commit"
    reversible = False

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return [tools.qemu_img.binary, "commit", "-q", "-d", "-b", p["base"], p["top"]]

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        result = tools.qemu_img.commit(p["top"], p["base"])
        return _with_fingerprints(result, p["base"])

    def probe(self, p: Params, tools: Tools) -> Evidence:
        # a commit leaves no mark to tell; running it again writes the same data
        return Evidence(None, {"fingerprints": fingerprints(p["base"])})


class BackingRepoint(Action):
    """``qemu-img rebase -u -b NEW PATH``: NEW holds what OLD held; undone by pointing back."""

    name = "backing-repoint"

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return [tools.qemu_img.binary, "rebase", "-u", "-b", p["new"], "-F", p["format"],
                p["path"]]

    def undo_argv(self, p: Params, tools: Tools) -> list[str]:
        return [tools.qemu_img.binary, "rebase", "-u", "-b", p["old"], "-F",
                p["old_format"], p["path"]]

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        result = tools.qemu_img.rebase(p["path"], p["new"], p["format"], unsafe=True)
        return _with_fingerprints(result, p["path"])

    def undo(self, p: Params, tools: Tools) -> ProcessResult:
        result = tools.qemu_img.rebase(p["path"], p["old"], p["old_format"], unsafe=True)
        return _with_fingerprints(result, p["path"])

    def probe(self, p: Params, tools: Tools) -> Evidence:
        return _backing_evidence(tools, p["path"], p["new"])


class BackingStream(BackingRepoint):
    """``qemu-img rebase -b NEW PATH`` (safe): OLD's data that NEW lacks is copied into PATH."""

    name = "backing-stream"

    def argv(self, p: Params, tools: Tools) -> list[str]:
        new = ["-b", p["new"], "-F", p["format"]] if p["new"] else ["-b", ""]
        return [tools.qemu_img.binary, "rebase", *new, p["path"]]

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        result = tools.qemu_img.rebase(p["path"], p["new"], p["format"])
        return _with_fingerprints(result, p["path"])


class ImageRemove(Action):
    """Unlink an image that holds nothing any more; a failure leaves it (a warning)."""

    name = "image-remove"
    reversible = False
    best_effort = True

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return ["unlink", p["path"]]

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        freed = allocated(p["path"])
        if os.path.lexists(p["path"]):
            os.unlink(p["path"])
        return ProcessResult(self.argv(p, tools), 0, detail={"freed": freed})

    def probe(self, p: Params, tools: Tools) -> Evidence:
        gone = not os.path.lexists(p["path"])
        return Evidence(gone, {"exists": not gone})


class MetadataReplace(Action):
    """Rewrite a remaining snapshot's metadata file with its new record; undone with the old."""

    name = "metadata-replace"

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return ["write", str(metadata_path(Path(p["dir"]), p["name"]))]

    def undo_argv(self, p: Params, tools: Tools) -> list[str]:
        return self.argv(p, tools)

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        return write_metadata(Path(p["dir"]), p["name"], p["record"])

    def undo(self, p: Params, tools: Tools) -> ProcessResult:
        return write_metadata(Path(p["dir"]), p["name"], p["old_record"])

    def probe(self, p: Params, tools: Tools) -> Evidence:
        path = metadata_path(Path(p["dir"]), p["name"])
        try:
            now = json.loads(path.read_text())
        except (OSError, ValueError):
            return Evidence(None, {"readable": False})
        return Evidence(now == libxl_record(p["record"]), {"readable": True})


class ImageFromTag(Action):
    """A new image holding an internal snapshot of another (``convert -l``); undone by
    removing it."""

    name = "image-from-tag"

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return [tools.qemu_img.binary, "convert", "-l", f"snapshot.name={p['tag']}", "-O",
                "qcow2", p["image"], p["new"]]

    def undo_argv(self, p: Params, tools: Tools) -> list[str]:
        return ["unlink", p["new"]]

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        if os.path.lexists(p["new"]):
            os.unlink(p["new"])           # a copy cut short by a crash is made again
        old_umask = os.umask(0o077)
        try:
            result = tools.qemu_img.image_from_tag(p["image"], p["tag"], p["new"],
                                                   p.get("backing"), p.get("backing_format"))
        finally:
            os.umask(old_umask)
        result.detail.update(like_base(p["image"], p["new"]))
        return result

    def undo(self, p: Params, tools: Tools) -> ProcessResult:
        if os.path.lexists(p["new"]):
            os.unlink(p["new"])
        return ProcessResult(self.undo_argv(p, tools), 0)

    def probe(self, p: Params, tools: Tools) -> Evidence:
        # a file may be a copy cut short: only a recorded outcome says it is whole
        return Evidence(False if not os.path.lexists(p["new"]) else None,
                        {"exists": os.path.lexists(p["new"])})


#: The merge actions, joined into the step table by engine/step_registry.
MERGE_ACTIONS = (ImageFromTag(), ImageCommit(), BackingRepoint(), BackingStream(), ImageRemove(),
                 MetadataReplace())
