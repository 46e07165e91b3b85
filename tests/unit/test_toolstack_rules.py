"""What differs between toolstacks is asked of the adapter, never a string test in a handler."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from commands.engine.domain_control import CONTROLS
from commands.errors import UsageError
from commands.toolstacks.base import Live
from commands.toolstacks.select import ADAPTERS, rules_of

ROOT = Path(__file__).resolve().parents[2]


def _string_tests(folder: Path) -> list[str]:
    """``x == "xen"`` (or qemu, offline; ``!=``, ``in``) anywhere under ``folder``."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                for part in [node.left, *node.comparators]:
                    values = part.elts if isinstance(part, (ast.Tuple, ast.List)) else [part]
                    if any(isinstance(v, ast.Constant) and v.value in ADAPTERS for v in values):
                        found.append(f"{path.relative_to(folder)}:{node.lineno}")
    return found


@pytest.mark.parametrize("folder", ["cli", "handlers", "planning", "engine", "state"])
def test_no_toolstack_string_tests_outside_the_toolstacks(folder: str) -> None:
    assert _string_tests(ROOT / "commands" / folder) == []


def test_the_string_test_finder_finds_them(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text('if live.toolstack == "xen":\n    pass\n'
                                   'ok = p["toolstack"] in ("qemu", "offline")\n'
                                   'fine = kind == "internal"\n')
    assert _string_tests(tmp_path) == ["m.py:1", "m.py:3"]


def _live(toolstack: str, state: str = "running", guest_type: str = "") -> Live:
    return Live(toolstack, state, "/run/x.qmp", argv=("qemu-system-x86_64", "-m", "64"),
                guest_type=guest_type)


def test_xen_refuses_memory_of_a_paused_pv_guest_and_live_external_disks() -> None:
    xen = rules_of("xen")
    with pytest.raises(UsageError, match="paused PV guest"):
        xen.check_memory_snapshot("web", _live("xen", "paused", "pv"))
    xen.check_memory_snapshot("web", _live("xen", "paused", "hvm"))
    xen.check_memory_snapshot("web", _live("xen", "running", "pv"))
    with pytest.raises(UsageError, match="not supported"):
        xen.check_live_external("xvda", "/img/a.qcow2")
    assert xen.save_pauses_domain and xen.reverts_by_restore and not xen.vmstate_in_qcow2
    assert xen.memory_format == "xl-save" and xen.restart_argv(_live("xen")) is None


def test_qemu_keeps_its_command_line_and_wants_an_absolute_memory_path() -> None:
    qemu = rules_of("qemu")
    qemu.check_memory_snapshot("vm1", _live("qemu", "paused", "pv"))
    qemu.check_live_external("vda", "/img/a.qcow2")
    with pytest.raises(UsageError):
        qemu.check_memory_path("relative.save")
    qemu.check_memory_path("/var/tmp/vm1.save")
    assert qemu.restart_argv(_live("qemu")) == ["qemu-system-x86_64", "-m", "64"]
    assert qemu.vmstate_in_qcow2 and not qemu.save_pauses_domain
    assert qemu.memory_format == "qemu-migration" and not qemu.reverts_by_restore


def test_a_record_without_a_toolstack_has_the_offline_rules() -> None:
    assert rules_of(None) is rules_of("offline") is ADAPTERS["offline"]
    assert not rules_of("offline").reverts_by_restore


def test_every_toolstack_that_runs_domains_has_an_engine_control() -> None:
    assert set(CONTROLS) == {name for name in ADAPTERS if name != "offline"}
