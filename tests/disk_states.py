"""What the guest would see in every snapshot and in the current disks, read with qemu-img.

Each state is the sha256 of ``qemu-img convert -O raw`` of the image that holds it
(through its whole backing chain; an internal snapshot with ``-l snapshot.name=``).
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from commands.handlers.check import check_domain
from commands.handlers.create import create_snapshot
from commands.handlers.messages import CreateSnapshot
from tests.conftest import Scratch


def raw_digest(image: str, tag: str | None = None) -> str:
    """sha256 of the guest-visible bytes of ``image`` (or of its internal snapshot ``tag``)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "raw"
        argv = ["qemu-img", "convert", "-U", "-O", "raw"]
        argv += ["-l", f"snapshot.name={tag}"] if tag else []
        subprocess.run([*argv, image, str(out)], check=True, capture_output=True, timeout=60)
        return hashlib.sha256(out.read_bytes()).hexdigest()


def ledger_of(scratch: Scratch) -> Any:
    svc = scratch.services()
    try:
        return svc.app.get_domain(scratch.uuid)
    finally:
        svc.close()


def states(scratch: Scratch) -> dict[str, str]:
    """``snap:NAME:DEVICE`` and ``current:DEVICE`` -> digest of what the guest sees."""
    svc = scratch.services()
    try:
        ledger = svc.app.get_domain(scratch.uuid)
        domain = svc.resolve(scratch.name).domain
        out: dict[str, str] = {}
        for name, entry in (ledger.entries.items() if ledger else []):
            for disk in entry["record"]["disks"]:
                tag = disk["name"] if disk["type"] == "internal" else None
                out[f"snap:{name}:{disk['device']}"] = raw_digest(disk["file"], tag)
        for e in domain.disks:
            out[f"current:{e.spec.vdev}"] = raw_digest(str(e.spec.target))
        return out
    finally:
        svc.close()


def without(before: dict[str, str], name: str) -> dict[str, str]:
    """``before`` less the states of snapshot ``name``."""
    return {k: v for k, v in before.items() if not k.startswith(f"snap:{name}:")}


def check_clean(scratch: Scratch) -> list[dict[str, Any]]:
    svc = scratch.services()
    try:
        return check_domain(svc, scratch.name)
    finally:
        svc.close()


def take(scratch: Scratch, name: str, external: bool) -> None:
    """Take snapshot ``name`` of the stopped scratch domain, in-process."""
    svc = scratch.services()
    try:
        cfg = None
        if external:
            cfg = scratch.root / f"{name}.snap.cfg"
            cfg.write_text(f'name="{name}"\ntype="external"\n')
        create_snapshot(CreateSnapshot(scratch.name, None if cfg else name,
                                       str(cfg) if cfg else None), svc)
    finally:
        svc.close()


def current_disks(scratch: Scratch) -> dict[str, str]:
    """vdev -> image the config uses now."""
    svc = scratch.services()
    try:
        return {e.spec.vdev: str(e.spec.target) for e in svc.resolve(scratch.name).domain.disks}
    finally:
        svc.close()
