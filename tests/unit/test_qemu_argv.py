"""Restarting QEMU from its own command line: drives repointed, run-state options replaced."""

from __future__ import annotations

import pytest

from commands.errors import UsageError
from commands.toolstacks.qemu_argv import drive_ids, join_options, restart_argv, split_options

ARGV = ["qemu-system-x86_64", "-machine", "q35", "-S", "-incoming", "tcp:0:4444",
        "-drive", "file=/img/a,,b.qcow2,format=qcow2,if=none,id=drv0,node-name=disk0",
        "-device", "virtio-blk-pci,drive=drv0",
        "--drive", "file=/img/c.raw,format=raw,if=none,id=drv1", "-loadvm", "old"]


def test_commas_are_doubled_inside_values() -> None:
    assert split_options("file=/a,,b,format=raw") == ["file=/a,b", "format=raw"]
    assert join_options(["file=/a,b", "format=raw"]) == "file=/a,,b,format=raw"


def test_drive_ids_read_both_spellings() -> None:
    assert drive_ids(ARGV) == {"drv0": "/img/a,b.qcow2", "drv1": "/img/c.raw"}


def test_restart_for_a_memory_image_points_drives_and_waits_for_it() -> None:
    argv = restart_argv(ARGV, {"drv1": ("/img/c.s1.qcow2", "qcow2")}, incoming=True)
    assert argv == ["qemu-system-x86_64", "-machine", "q35",
                    "-drive", "file=/img/a,,b.qcow2,format=qcow2,if=none,id=drv0,node-name=disk0",
                    "-device", "virtio-blk-pci,drive=drv0",
                    "--drive", "file=/img/c.s1.qcow2,if=none,id=drv1,format=qcow2",
                    "-daemonize", "-incoming", "defer"]


def test_a_cold_restart_can_start_paused() -> None:
    assert restart_argv(ARGV, {}, incoming=False, paused=True)[-2:] == ["-daemonize", "-S"]
    assert restart_argv(ARGV, {}, incoming=False)[-1] == "-daemonize"


def test_unknown_drives_and_unreadable_command_lines_are_refused() -> None:
    with pytest.raises(UsageError, match="no -drive with id=drv9"):
        restart_argv(ARGV, {"drv9": ("/x", "qcow2")}, incoming=True)
    with pytest.raises(UsageError, match="not readable"):
        restart_argv([], {}, incoming=True)
