"""Live disks through QMP: one ``transaction`` of internal tags and overlays, tag deletes,
and QEMU's whole-VM internal snapshots (``snapshot-save``/``-load``/``-delete`` jobs).

Same contract as ``commands.engine.actions``; see ``commands.engine.actions_live`` for the helpers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from commands.engine.actions import Action, Evidence, Params, Tools, like_base
from commands.engine.actions_block_jobs import run_block_job
from commands.engine.live_helpers import qmp_argv, qmp_step, tag_evidence, tags_by_device
from commands.drivers.process import ProcessResult
from commands.drivers.qmp import Qmp, QmpError
from commands.state.atomic_files import remove_file




class LiveSnapshot(Action):
    """One QMP ``transaction``: internal tags and external overlays of live disks, all or none.

    Undone per disk: an internal tag is deleted (``blockdev-snapshot-delete-internal-sync``);
    an overlay that became the live disk is committed into its direct backing file, the
    node the transaction put it on (an active ``block-commit`` with ``top-node`` and
    ``base-node`` given, then ``job-complete``: that node is live again), and removed.
    Nothing below that node changes: a commit without a base would merge the whole
    chain into its bottom image.
    """

    name = "live-internal-snapshot"

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return qmp_argv(p["socket"], "transaction", {"actions": _transaction(p)})

    def undo_argv(self, p: Params, tools: Tools) -> list[str]:
        argv: list[str] = ["qmp", p["socket"]]
        for device in p.get("internal", []):
            argv += ["blockdev-snapshot-delete-internal-sync",
                     json.dumps({"device": device, "name": p["tag"]})]
        for o in p.get("external", []):
            argv += ["block-commit", json.dumps(_commit_args(o), sort_keys=True),
                     "unlink", o["overlay"]]
        return argv

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        for o in p.get("external", []):
            if os.path.lexists(o["overlay"]):
                raise FileExistsError(f"overlay {o['overlay']} exists already")
        def effect(q: Qmp) -> None:
            q.execute("transaction", {"actions": _transaction(p)})

        result = qmp_step(tools, p["socket"], self.argv(p, tools), effect)
        # QEMU made the overlays with its own umask: they get their bases' owner and mode
        # (recorded; a failure is recorded too, not a reason to undo a taken snapshot)
        made: dict[str, Any] = {}
        for o in p.get("external", []):
            try:
                made[o["overlay"]] = like_base(o["base"], o["overlay"])
            except OSError as exc:
                made[o["overlay"]] = {"error": str(exc)}
        result.detail["overlays"] = made
        return result

    def undo(self, p: Params, tools: Tools) -> ProcessResult:
        def effect(q: Qmp) -> dict[str, Any]:
            if q.query_status().status == "postmigrate":
                # After a migration QEMU's images are inactive (read-only) until ``cont``:
                # let the stopped guest run for an instant to take them back.
                q.cont()
                q.stop()
            tags = tags_by_device(tools, p["socket"]) if p.get("internal") else {}
            deleted = []
            for device in p.get("internal", []):
                if p["tag"] in tags.get(device, ()):
                    q.delete_internal(device, p["tag"])
                    deleted.append(device)
            committed = []
            for o in p.get("external", []):
                if _live_file(q, o["device"]) == o["overlay"]:
                    _commit_active(q, o)
                    committed.append(o["device"])
                remove_file(Path(o["overlay"]))
            return {"deleted": deleted, "committed": committed}

        return qmp_step(tools, p["socket"], self.undo_argv(p, tools), effect)

    def probe(self, p: Params, tools: Tools) -> Evidence:
        parts: list[Evidence] = []
        if p.get("internal"):
            parts.append(tag_evidence(tools, p["socket"], p["internal"], p["tag"]))
        if p.get("external"):
            parts.append(_overlay_evidence(tools, p))
        seen = {e.happened for e in parts}
        detail = {k: v for e in parts for k, v in e.detail.items()}
        return Evidence(seen.pop() if len(seen) == 1 else None, detail)


class LiveExternalSnapshot(LiveSnapshot):
    """The same transaction when it puts overlays on top of live disks."""

    name = "live-external-snapshot"


def _transaction(p: Params) -> list[dict[str, Any]]:
    actions = [{"type": "blockdev-snapshot-internal-sync",
                "data": {"device": d, "name": p["tag"]}} for d in p.get("internal", [])]
    actions += [{"type": "blockdev-snapshot-sync", "data": {
        "node-name": o["node"], "snapshot-file": o["overlay"],
        "snapshot-node-name": o["snapshot_node"], "format": "qcow2"}}
        for o in p.get("external", [])]
    return actions


def _live_file(q: Qmp, device: str) -> str | None:
    for dev in q.query_block():
        if device in (dev.device, dev.node_name):
            return dev.filename
    return None


def _commit_args(o: Params) -> dict[str, Any]:
    """``block-commit`` of exactly one overlay: the new node into the node it was put on.

    A step recorded without node names (an older plan) names the two files instead.
    """
    job = {"device": o["device"], "job-id": f"xlsnap-commit-{o['device']}",
           "auto-dismiss": False}
    if o.get("snapshot_node") and o.get("node"):
        return {**job, "top-node": o["snapshot_node"], "base-node": o["node"]}
    return {**job, "top": o["overlay"], "base": o["base"]}


def _commit_active(q: Qmp, o: Params) -> None:
    """Merge the overlay ``o`` (the live top) into its direct backing file, live again.

    A commit job of ours left by an earlier try (it failed, or xlsnap was killed while it
    ran) is carried on, not started again: QEMU would refuse a second one.
    """
    args = _commit_args(o)
    job = args.pop("job-id")
    args.pop("auto-dismiss")
    run_block_job(q, job, "block-commit", args)


def _overlay_evidence(tools: Tools, p: Params) -> Evidence:
    try:
        live = {key: d.filename for d in tools.qmp(p["socket"]).query_block()
                for key in (d.device, d.node_name) if key}
    except QmpError as exc:
        return Evidence(None, {"qmp": exc.desc})
    on_top = [o["device"] for o in p["external"] if live.get(o["device"]) == o["overlay"]]
    exist = [o["overlay"] for o in p["external"] if os.path.lexists(o["overlay"])]
    detail = {"overlays_live": on_top, "overlays_present": exist}
    if len(on_top) == len(p["external"]):
        return Evidence(True, detail)
    if not exist and not on_top:
        return Evidence(False, detail)
    return Evidence(None, detail)


class LiveTagDelete(Action):
    """Delete one live disk's internal tag through QMP: cannot be taken back."""

    name = "live-tag-delete"
    reversible = False

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return qmp_argv(p["socket"], "blockdev-snapshot-delete-internal-sync",
                        {"device": p["device"], "name": p["tag"]})

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        def effect(q: Qmp) -> dict[str, Any]:
            if p["tag"] not in tags_by_device(tools, p["socket"]).get(p["device"], ()):
                return {"absent": True}
            q.delete_internal(p["device"], p["tag"])
            return {}

        return qmp_step(tools, p["socket"], self.argv(p, tools), effect)

    def probe(self, p: Params, tools: Tools) -> Evidence:
        return tag_evidence(tools, p["socket"], [p["device"]], p["tag"],
                             present_means_done=False)


class LiveSafetyTagDelete(LiveTagDelete):
    """Removing a revert's safety tag from a live disk: a clean-up whose failure fails nothing."""

    name = "live-safety-tag-delete"
    best_effort = True


# ---- whole-VM internal snapshots (QEMU jobs) --------------------------------------------


class VmSnapshotSave(Action):
    """``snapshot-save``: RAM into the ``vmstate`` node, every listed disk tagged, at once."""

    name = "vm-snapshot-save"

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return qmp_argv(p["socket"], "snapshot-save", _job_args(p, p["tag"]))

    def undo_argv(self, p: Params, tools: Tools) -> list[str]:
        return qmp_argv(p["socket"], "snapshot-delete",
                        {"tag": p["tag"], "devices": p["devices"]})

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        with tools.watch("saving memory", None, None):
            return qmp_step(tools, p["socket"], self.argv(p, tools),
                             lambda q: q.snapshot_save(p["tag"], p["vmstate"], p["devices"]))

    def undo(self, p: Params, tools: Tools) -> ProcessResult:
        return qmp_step(tools, p["socket"], self.undo_argv(p, tools),
                         lambda q: q.snapshot_delete(p["tag"], p["devices"]))

    def probe(self, p: Params, tools: Tools) -> Evidence:
        return tag_evidence(tools, p["socket"], p["devices"], p["tag"])


class VmSafetySave(VmSnapshotSave):
    """The whole-VM snapshot a revert takes first, to put the VM back if the load fails."""

    name = "vm-safety-save"


class VmSnapshotLoad(Action):
    """``snapshot-load``: disks and RAM back to ``tag``; undone by loading the safety tag.

    A failed load leaves QEMU stopped (``restore-vm``): the undo of the pause step, and
    the handler's own clean-up, resume it.
    """

    name = "vm-snapshot-load"

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return qmp_argv(p["socket"], "snapshot-load", _job_args(p, p["tag"]))

    def undo_argv(self, p: Params, tools: Tools) -> list[str]:
        return qmp_argv(p["socket"], "snapshot-load", _job_args(p, p["safety"]))

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        with tools.watch("restoring memory", None, None):
            return qmp_step(tools, p["socket"], self.argv(p, tools),
                             lambda q: q.snapshot_load(p["tag"], p["vmstate"], p["devices"]))

    def undo(self, p: Params, tools: Tools) -> ProcessResult:
        return qmp_step(tools, p["socket"], self.undo_argv(p, tools),
                         lambda q: q.snapshot_load(p["safety"], p["vmstate"], p["devices"]))


class VmSnapshotDelete(Action):
    """``snapshot-delete`` of a whole-VM snapshot: cannot be taken back."""

    name = "vm-snapshot-delete"
    reversible = False

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return qmp_argv(p["socket"], "snapshot-delete", {"tag": p["tag"],
                                                         "devices": p["devices"]})

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        return qmp_step(tools, p["socket"], self.argv(p, tools),
                         lambda q: q.snapshot_delete(p["tag"], p["devices"]))

    def probe(self, p: Params, tools: Tools) -> Evidence:
        return tag_evidence(tools, p["socket"], p["devices"], p["tag"],
                             present_means_done=False)


class VmSafetyDelete(VmSnapshotDelete):
    """Removing a revert's safety snapshot: a clean-up whose failure fails nothing."""

    name = "vm-safety-delete"
    best_effort = True


def _job_args(p: Params, tag: str) -> dict[str, Any]:
    return {"tag": tag, "vmstate": p["vmstate"], "devices": p["devices"]}


#: The actions of this module, for ``commands.engine.step_registry``.
QMP_ACTIONS: tuple[Action, ...] = (
    LiveSnapshot(), LiveExternalSnapshot(), LiveTagDelete(), LiveSafetyTagDelete(),
    VmSnapshotSave(), VmSafetySave(), VmSnapshotLoad(), VmSnapshotDelete(), VmSafetyDelete())
