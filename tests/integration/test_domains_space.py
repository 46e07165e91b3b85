"""``domains --space``: VM state inside the qcow2 images and external overlays count,
read without a lock; an image that cannot be read makes the total unknown, not zero."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import pytest

from tests.conftest import Run, Scratch, image_info

Xlsnap = Callable[..., Run]


def _savevm(scratch: Scratch, tag: str) -> None:
    """A whole-VM internal snapshot made by QEMU itself (``savevm``, machine ``none``):
    a tag on both disks and VM state in one of them."""
    argv = ["qemu-system-x86_64", "-M", "none", "-nodefaults", "-display", "none",
            "-monitor", "stdio"]
    for k, disk in enumerate((scratch.disk_a, scratch.disk_b)):
        argv += ["-drive", f"file={disk},if=none,id=d{k},format=qcow2"]
    try:
        subprocess.run(argv, input=f"savevm {tag}\nquit\n", capture_output=True, text=True,
                       timeout=120, check=True)
    except FileNotFoundError:
        pytest.skip("qemu-system-x86_64 is not installed")


def _vm_state(path) -> int:
    return sum(s.get("vm-state-size", 0) for s in image_info(path).get("snapshots", []))


def test_domains_space_counts_vm_state_and_overlays(scratch: Scratch, xlsnap: Xlsnap) -> None:
    _savevm(scratch, "vmx")
    assert xlsnap("adopt", "web", "vmx").code == 0
    assert xlsnap("snapshot-create", "-n", "i1", "web").code == 0
    cfg = scratch.root / "ext.cfg"
    cfg.write_text('name = "e1"\ntype = "external"\n')
    assert xlsnap("snapshot-create", "web", str(cfg)).code == 0
    overlays = [image_info(p)["filename"] for p in scratch.images.iterdir()
                if p not in (scratch.disk_a, scratch.disk_b)]
    assert len(overlays) == 2
    vm_state = _vm_state(scratch.disk_a) + _vm_state(scratch.disk_b)
    assert vm_state > 0
    allocated = sum((scratch.images / p).stat().st_blocks * 512 for p in overlays)
    plain = json.loads(xlsnap("domains", "--json").out)[0]
    assert "space" not in plain                               # only asked for: it reads images
    [row] = json.loads(xlsnap("domains", "--space", "--json").out)
    assert row["space"] == {"memory_bytes": 0, "vm_state_bytes": vm_state,
                            "overlay_bytes": allocated, "held_bytes": vm_state + allocated,
                            "unreachable": []}
    text = xlsnap("domains", "--space").out
    assert "Held" in text and f"{(vm_state + allocated) / 2**20:.1f} MiB" in text
    scratch.disk_b.rename(scratch.root / "b-elsewhere.qcow2")  # unreadable: unknown, not 0
    [row] = json.loads(xlsnap("domains", "--space", "--json").out)
    assert row["space"]["held_bytes"] is None
    assert row["space"]["unreachable"] == [str(scratch.disk_b)]
    run = xlsnap("domains", "--space")
    assert run.code == 0 and "unknown" in run.out.splitlines()[1]
