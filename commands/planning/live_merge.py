"""A merge planned for files (``commands.planning.merge_plan``) made live: the steps that
write an image a running QEMU has open become its block jobs."""

from __future__ import annotations

import hashlib
from typing import Any

from commands.engine.actions import StepSpec
from commands.planning.image_graph import DiskGraph


def live_chain(graph: DiskGraph) -> list[str]:
    """The files QEMU has open for the disk: its current image and that image's backing
    chain, the top first."""
    chain: list[str] = []
    path = graph.current
    while path and path not in chain:
        chain.append(path)
        path = graph.backing(path)
    return chain


def as_before_commit(graph: DiskGraph, disk: dict[str, Any],
                     others: list[dict[str, Any]]) -> None:
    """Undo in ``graph`` the one change a live commit of the snapshot's overlay makes
    besides the merge: QEMU pointed the image above it at the base. A delete that failed
    on a later disk left it so; planning it again as before lets the commit be found done
    (``live-block-commit`` sees it) and the records be renamed as the first try would."""
    overlay, base = disk.get("path"), disk["file"]
    if overlay not in graph.info or graph.backing(overlay) != base:
        return
    for record in others:
        for other in record.get("disks", []):
            top = other.get("path")
            # only an external snapshot standing on the overlay has an image above it (an
            # internal one's record names the overlay itself: made its own backing file,
            # the base looked childless and was removed under the disk in use)
            if (other.get("type") == "external" and other.get("device") == graph.device
                    and other.get("file") == overlay and top != overlay
                    and top in graph.info and graph.backing(top) == base):
                graph.info[top] = graph.info[top]._replace(backing_file=overlay)


def live_merge_steps(steps: list[StepSpec], chain: list[str], socket: str,
                     device: str) -> list[StepSpec]:
    """``steps`` with those that write into ``chain`` done by QEMU on ``device``.

    QEMU holds its whole chain locked, so qemu-img cannot write there: an ``image-commit``
    whose top is in the chain becomes ``live-block-commit`` (QEMU points the image above
    the top at the base itself, so that ``backing-repoint`` is dropped), a
    ``backing-stream`` into the chain becomes ``live-block-stream``; steps on files
    outside the chain stay as they are.
    """
    out: list[StepSpec] = []
    by_qemu: set[str] = set()
    for step in steps:
        p = step.params
        if step.action == "image-commit" and p["top"] in chain:
            out.append(StepSpec("live-block-commit", p["base"], {
                "socket": socket, "device": device, "top": p["top"], "base": p["base"],
                "job": _job_id("commit", p["top"])}))
            at = chain.index(p["top"])
            if at > 0:
                by_qemu.add(chain[at - 1])
        elif step.action == "backing-stream" and p["path"] in chain:
            out.append(StepSpec("live-block-stream", p["path"], {
                "socket": socket, "device": device, "path": p["path"], "old": p["old"],
                "new": p["new"], "job": _job_id("stream", p["path"])}))
        elif step.action == "backing-repoint" and p["path"] in by_qemu:
            continue
        else:
            out.append(step)
    return out


def _job_id(kind: str, path: str) -> str:
    """A QMP job id (letters, digits, ``-``) that names the step's file."""
    return f"xlsnap-{kind}-{hashlib.sha256(path.encode()).hexdigest()[:12]}"
