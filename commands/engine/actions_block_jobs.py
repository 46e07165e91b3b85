"""Live merges of a running QEMU's disk chain: QMP ``block-commit`` and ``block-stream``."""

from __future__ import annotations

import os
import time
from typing import Any

from commands.drivers.qmp import Qmp, QmpError
from commands.drivers.qmp_chain import backing_chain
from commands.drivers.process import ProcessResult
from commands.engine.actions import Action, Evidence, Params, Tools
from commands.engine.base_fingerprints import fingerprints
from commands.engine.live_helpers import qmp_argv, qmp_step

#: Seconds a merge may take before the step fails (the job is then cancelled).
JOB_TIMEOUT = 3600.0


def run_block_job(q: Qmp, job: str, command: str, args: dict[str, Any],
                  timeout: float = JOB_TIMEOUT, written: str | None = None) -> dict[str, Any]:
    """Start ``command`` as job ``job`` (unless QEMU has it already), complete it when it
    is ready (an active commit), finalize it when pending, wait for its end and dismiss
    it; returns its timings.

    QEMU flushes the image the job wrote (``written``) while the guest's I/O is drained
    (the graph changes at the end): that image's data is flushed to disk here first, the
    guest running, so the drained flush finds little left (~85 ms less for 256 MiB).
    """
    if job not in {j["id"] for j in q.execute("query-jobs")}:
        q.execute(command, {**args, "job-id": job, "auto-dismiss": False,
                            "auto-finalize": False})
    deadline = time.monotonic() + timeout
    timings: dict[str, Any] = {}
    while True:
        state = {j["id"]: j for j in q.execute("query-jobs")}.get(job, {})
        if state.get("status") == "ready" and "complete_ms" not in timings:
            _flush(written)
            start = time.perf_counter()
            q.execute("job-complete", {"id": job})
            timings["complete_ms"] = round((time.perf_counter() - start) * 1000.0, 3)
        elif state.get("status") == "pending":
            _flush(written)
            q.execute("job-finalize", {"id": job})
        elif state.get("status") == "concluded":
            q.execute("job-dismiss", {"id": job})
            if state.get("error"):
                raise QmpError(str(state["error"]), "JobFailed", command, args)
            return timings
        elif not state:
            raise QmpError(f"job {job} is gone", "JobFailed", command, args)
        if time.monotonic() > deadline:
            q.execute("job-cancel", {"id": job})
            raise QmpError(f"{command} did not finish in {timeout:g}s", "Timeout", command,
                           args)
        time.sleep(0.01)


def _flush(path: str | None) -> None:
    """Write the file's dirty pages to disk (``fdatasync``; any descriptor of it will do)."""
    if not path:
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def _has_job(q: Qmp, job: str) -> bool:
    return job in {j["id"] for j in q.execute("query-jobs")}


def _node(chain: list[tuple[str, str]], path: str | None) -> str | None:
    return next((node for file, node in chain if file == path), None)


def _below(chain: list[tuple[str, str]], path: str) -> str | None:
    files = [f for f, _ in chain]
    at = files.index(path)
    return files[at + 1] if at + 1 < len(files) else None


def _chain_evidence(tools: Tools, p: Params, written: str) -> Evidence:
    """QEMU's chain of the disk and whether our job still runs (``happened`` is None
    while it does or QEMU cannot be asked), with the written image's fingerprint."""
    try:
        q = tools.qmp(p["socket"])
        chain = backing_chain(q, p["device"])
        running = _has_job(q, p["job"])
    except QmpError as exc:
        return Evidence(None, {"qmp": exc.desc})
    files = [f for f, _ in chain]
    detail = {"chain": files, "job_running": running,
              "fingerprints": fingerprints(written)}
    return Evidence(None if running or not files else True, detail)


def _above(files: list[str], path: str) -> str | None:
    """The image right above ``path`` in a chain listed top first (None for the top, or
    for an image not in the chain)."""
    at = files.index(path) if path in files else 0
    return files[at - 1] if at > 0 else None


class LiveBlockCommit(Action):
    """``block-commit`` of ``top`` into ``base`` (its backing file) in a running QEMU.

    A job that runs while the guest runs; an active commit (of the image QEMU writes to)
    ends with ``job-complete``, QEMU then writes to the base. Not taken back (like
    ``image-commit``) and safe to run again: a job of ours still in QEMU is carried on,
    a merge already done is seen in the chain and not repeated (so for the stream).
    """

    name = "live-block-commit"
    reversible = False

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return qmp_argv(p["socket"], "block-commit", {
            "job-id": p["job"], "device": p["device"], "top": p["top"], "base": p["base"]})

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        def effect(q: Qmp) -> dict[str, Any]:
            chain = backing_chain(q, p["device"])
            files = [f for f, _ in chain]
            if not _has_job(q, p["job"]):
                if p["top"] not in files and p["base"] in files:
                    return {"already": True,
                            "fingerprints": fingerprints(p["base"], _above(files, p["base"]))}
                if p["top"] not in files or _below(chain, p["top"]) != p["base"]:
                    raise QmpError(f"{p['top']} is not backed by {p['base']} in QEMU's "
                                   f"chain {files}", "ChainChanged", "block-commit", {})
            args = {"device": p["device"], "top-node": _node(chain, p["top"]),
                    "base-node": _node(chain, p["base"])}
            timings = run_block_job(q, p["job"], "block-commit", args, written=p["base"])
            # QEMU re-pointed the image above ``top`` at ``base`` (its header written): its
            # new fingerprint too, or ``check`` takes it, another snapshot's base, as
            # changed behind xlsnap's back. Read from the chain as it is now: a job carried
            # on after a kill may have ended before ``files`` was read.
            after = [f for f, _ in backing_chain(q, p["device"])]
            return {"active": files[:1] == [p["top"]], **timings,
                    "fingerprints": fingerprints(p["base"], _above(after, p["base"]))}

        return qmp_step(tools, p["socket"], self.argv(p, tools), effect)

    def probe(self, p: Params, tools: Tools) -> Evidence:
        found = _chain_evidence(tools, p, p["base"])
        files = found.detail.get("chain", [])
        if found.happened is None:
            return found
        done = p["top"] not in files and p["base"] in files
        if done:  # the image QEMU re-pointed at the base, as ``do`` records it
            found.detail["fingerprints"].update(fingerprints(_above(files, p["base"])))
        return Evidence(done, found.detail)


class LiveBlockStream(Action):
    """``block-stream`` into ``path`` of its backing file ``old``; ``new`` backs it then."""

    name = "live-block-stream"
    reversible = False

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return qmp_argv(p["socket"], "block-stream", {
            "job-id": p["job"], "device": p["path"], "base": p["new"]})

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        def effect(q: Qmp) -> dict[str, Any]:
            chain = backing_chain(q, p["device"])
            files = [f for f, _ in chain]
            if not _has_job(q, p["job"]):
                below = _below(chain, p["path"]) if p["path"] in files else "?"
                if below == p["new"]:
                    return {"already": True, "fingerprints": fingerprints(p["path"])}
                if below != p["old"]:
                    raise QmpError(f"{p['path']} is not backed by {p['old']} in QEMU's "
                                   f"chain {files}", "ChainChanged", "block-stream", {})
            args: dict[str, Any] = {"device": _node(chain, p["path"])}
            if p["new"]:
                args["base-node"] = _node(chain, p["new"])
            timings = run_block_job(q, p["job"], "block-stream", args, written=p["path"])
            return {**timings, "fingerprints": fingerprints(p["path"])}

        return qmp_step(tools, p["socket"], self.argv(p, tools), effect)

    def probe(self, p: Params, tools: Tools) -> Evidence:
        found = _chain_evidence(tools, p, p["path"])
        files = found.detail.get("chain", [])
        if found.happened is None or p["path"] not in files:
            return Evidence(None, found.detail)
        return Evidence(_below([(f, "") for f in files], p["path"]) == p["new"], found.detail)


#: The actions of this module, for ``commands.engine.step_registry``.
BLOCK_JOB_ACTIONS: tuple[Action, ...] = (LiveBlockCommit(), LiveBlockStream())
