"""The audit history: every event as a row (time, domain, actor, operation, what happened)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

_ENVELOPE = {"originator_id", "originator_version", "timestamp", "actor", "operation_id",
             "originator_topic"}


def history_row(position: int | None, event: Any, domain_names: dict[str, str]) -> dict[str, Any]:
    """One event as a JSON-ready row; ``data`` holds the event's own fields."""
    fields = vars(event)
    domain_id = str(event.originator_id)
    return {
        "position": position,
        "time": event.timestamp.timestamp(),
        "domain": domain_names.get(domain_id, fields.get("domain_name", domain_id)),
        "domain_id": domain_id,
        "version": event.originator_version,
        "event": type(event).__qualname__.split(".")[-1],
        "operation_id": fields.get("operation_id"),
        "actor": fields.get("actor"),
        "data": {k: v for k, v in fields.items() if k not in _ENVELOPE},
    }


def history_rows(
    events: Iterable[tuple[int | None, Any]], domain_names: dict[str, str]
) -> Iterator[dict[str, Any]]:
    for position, event in events:
        yield history_row(position, event, domain_names)


def describe(row: dict[str, Any]) -> str:
    """A one-line human summary of a history row's data."""
    data = row["data"]
    kind = row["event"]
    if kind == "Registered":
        return f"domain {data.get('domain_name')} ({data.get('domain_uuid')})"
    if kind == "OperationStarted":
        return f"{data.get('kind')} {data.get('snapshot_name') or ''}".strip()
    if kind == "StepStarted":
        argv = " ".join(str(a) for a in data.get("argv", []))
        return f"step {data.get('step')} {data.get('phase')} {data.get('action')}: {argv}"
    if kind == "StepFinished":
        result = data.get("result", {})
        outcome = "ok" if data.get("ok") else f"FAILED rc={result.get('returncode')}"
        err = str(result.get("stderr", "")).strip().splitlines()
        tail = f": {err[-1]}" if err and not data.get("ok") else ""
        return f"step {data.get('step')} {data.get('phase')} {outcome}{tail}"
    if kind == "OperationFinished":
        message = data.get("message") or ""
        return f"{data.get('outcome')}{': ' + message if message else ''}"
    if kind in ("SnapshotTaken", "RevertedToSnapshot", "SnapshotDeleted"):
        parent = f" (parent {data.get('parent')})" if kind == "SnapshotTaken" else ""
        return f"{data.get('name')}{parent}"
    if kind == "RecoveryDecided":
        steps = data.get("evidence", {})
        words = {True: "happened", False: "not done", None: "unknown"}
        seen = ", ".join(f"step {n} {words[e.get('happened', False)]}"
                         for n, e in steps.items())
        return f"roll {data.get('decision')}: {seen}"
    if kind == "SnapshotEdited":
        new = data.get("new_name")
        what = f"renamed {data.get('name')} -> {new}" if new != data.get("name") \
            else f"{new} edited"
        return f"{what} (description {str((data.get('record') or {}).get('description'))!r})"
    if kind == "CurrentMarked":
        return f"{data.get('name')} marked current (no revert)"
    if kind in ("HoldPlaced", "HoldReleased"):
        verb = "held by" if kind == "HoldPlaced" else "released from hold"
        return f"{data.get('name')} {verb} {data.get('tag')!r}"
    if kind == "SnapshotDisksRemoved":
        return f"{data.get('name')} removed from {', '.join(data.get('devices', []))}"
    if kind == "AccessRefused":
        return f"REFUSED {data.get('command')}: {data.get('reason')}"
    return ", ".join(f"{k}={v}" for k, v in data.items())


def actor_label(actor: dict[str, Any] | None) -> str:
    """``user@host``, with who ran sudo: ``root (sudo by alice)@xen1``."""
    actor = actor or {}
    sudo = f" (sudo by {actor['sudo_user']})" if actor.get("sudo_user") else ""
    return f"{actor.get('user', '?')}{sudo}@{actor.get('host', '?')}"
