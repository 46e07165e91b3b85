"""``snapshot-delete`` of an internal snapshot: every disk's tag, then the metadata file.

A qcow2 tag once deleted cannot be brought back; if a later disk fails, the ledger
records which disks lost the tag, the snapshot is marked incomplete, and running
the delete again finishes it.
"""

from __future__ import annotations

from commands.actions import StepSpec
from commands.domains import load_domain
from commands.existing import internal_disks
from commands.messages import DeleteSnapshot
from commands.metadata import metadata_path
from commands.operation import Operation
from commands.services import Services


def delete_snapshot(cmd: DeleteSnapshot, svc: Services) -> None:
    """Delete snapshot ``cmd.name``; its children get its parent.

    Example: ``delete_snapshot(DeleteSnapshot("web", "before-upgrade"), svc)``.
    """
    domain = load_domain(svc.settings.config_dir, cmd.domain)
    ledger = svc.ledger_for(domain)
    ledger.check_idle()
    disks = internal_disks(domain, ledger, cmd.name, svc.qemu_img, "delete")
    record = ledger.entry(cmd.name)["record"]
    domain_dir = svc.settings.domain_dir(domain.uuid)
    plan = [StepSpec("internal-snapshot-delete", d.path, {"path": d.path, "tag": d.tag})
            for d in disks]
    plan.append(StepSpec("metadata-remove", str(metadata_path(domain_dir, cmd.name)),
                         {"dir": str(domain_dir), "name": cmd.name, "record": record}))
    op = Operation(svc.app, ledger, svc.actor, svc.tools)
    device_of = {d.path: d.device for d in disks}

    def partial(done: list[StepSpec]) -> str:
        devices = [device_of[s.target] for s in done if s.target in device_of]
        ledger.record_disks_removed(op.operation_id, cmd.name, devices, svc.actor)
        return (f"snapshot {cmd.name!r} was already removed from {', '.join(devices)} and is "
                "now incomplete; run snapshot-delete again to finish")

    op.start("delete", cmd.name, {"domain": domain.name}, plan)
    try:
        op.run(plan, on_irreversible=partial)
    finally:
        svc.sync()
    op.complete(lambda lg: lg.record_removed(op.operation_id, cmd.name, svc.actor))
    svc.sync()
