"""``adopt``: record an internal snapshot made outside xlsnap (by hand with qemu-img)."""

from __future__ import annotations

from typing import Any

from commands.engine.actions import StepSpec
from commands.config.domains import load_domain
from commands.errors import UsageError
from commands.state.snapshot_metadata import metadata_path
from commands.handlers.operation_flow import carry_out
from commands.bootstrap import Services
from ledger.names import check_snapshot_name

#: The domain's state when a snapshot was made by hand is not known.
UNKNOWN_STATE = {"state": "unknown", "running": False, "blocked": False, "paused": False,
                 "shutdown": False, "dying": False}


def adopt_snapshot(svc: Services, domain_name: str, tag: str) -> dict[str, Any]:
    """Record qcow2 tag ``tag`` (found on the domain's disks) as an adopted snapshot."""
    domain = load_domain(svc.settings.config_dir, domain_name)
    check_snapshot_name(tag)
    ledger = svc.idle_ledger_for(domain)
    ledger.check_new_name(tag)
    disks: list[dict[str, Any]] = []
    dates: list[int] = []
    without: list[str] = []
    for entry in domain.disks:
        spec = entry.spec
        if not (spec.writable and spec.target and spec.format == "qcow2"):
            continue
        found = svc.qemu_img.info(spec.target, force_share=True).find(tag)
        if len(found) > 1:
            raise UsageError(f"disk {spec.vdev!r} ({spec.target}) has {len(found)} tags named "
                             f"{tag!r}; delete the extra ones with qemu-img first")
        if found:
            dates.append(found[0].date_sec)
            disks.append({"device": spec.vdev, "name": tag, "file": spec.target,
                          "format": "qcow2", "path": spec.target, "type": "internal"})
        else:
            without.append(spec.vdev)
    if not disks:
        raise UsageError(f"no disk of domain {domain.name!r} has a snapshot tag {tag!r}")
    if without:
        # A revert of it would leave those disks as they are and still report success.
        raise UsageError(f"tag {tag!r} is on {', '.join(d['device'] for d in disks)} but not on "
                         f"{', '.join(without)}: not adopted, a snapshot covers every writable "
                         "qcow2 disk (tag the others too, or delete the stray tag)")
    domain_dir = svc.settings.domain_dir(domain.uuid)
    record: dict[str, Any] = {
        "name": tag, "description": "adopted: made outside xlsnap",
        "creation_time": min(dates), "claimed_creation_time": None, "memory": "no",
        "type": "internal", **UNKNOWN_STATE, "disks": disks,
        "domain": {"name": domain.name, "uuid": domain.uuid}, "adopted": True,
    }
    plan = [StepSpec("metadata-write", str(metadata_path(domain_dir, tag)),
                     {"dir": str(domain_dir), "name": tag, "record": record})]
    carry_out(svc, ledger, "adopt", tag, {"domain": domain.name, "record": record}, plan,
              lambda op: lambda lg: lg.record_taken(op.operation_id, tag, record, svc.actor))
    return record
