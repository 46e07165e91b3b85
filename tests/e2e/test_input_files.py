"""Config files that are not plain small files: refused with one line, exit 2, nothing read.

A domain config or a snapshot config may be ``/dev/zero`` (read until memory runs out),
a FIFO (an open that never returns), a huge file, or a link that loops. Each is refused
before a byte is read, by the real CLI; the xlsnap process runs with its address space
capped at 1 GiB so that a regression fails the test instead of the host.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, Run, Scratch
from tests.e2e.test_bad_input import (
    ERROR_PREFIX,
    USAGE_EXIT,
    State,
    event_count,
    read_image,
)

ADDRESS_SPACE = 1 << 30


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def bounded(scratch: Scratch, *args: str, **env: str) -> Run:
    """The real CLI with 1 GiB of address space and 30 s: a hang or a flood fails here."""
    proc = subprocess.run([sys.executable, "-m", "commands", *args], capture_output=True,
                          text=True, env={**scratch.env(), **env}, cwd=REPO, timeout=30,
                          preexec_fn=_cap_memory)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def capture(scratch: Scratch) -> State:
    """As ``test_bad_input.capture``, reading only the regular files of the config folder
    (reading a FIFO or ``/dev/zero`` would hang the test itself)."""
    return State(
        events=event_count(scratch.ledger),
        images={p.name: read_image(p) for p in sorted(scratch.images.iterdir()) if p.is_file()},
        configs={p.name: p.read_bytes() for p in sorted(scratch.config_dir.iterdir())
                 if p.is_file()},
        snapshot_files=scratch.snapshot_files(),
    )


def assert_refused(run: Run, scratch: Scratch, before: State, *fragments: str) -> str:
    """Exit 2, one ``xlsnap: error:`` line holding every fragment, nothing changed."""
    assert run.code == USAGE_EXIT, f"exit {run.code}, stdout {run.out!r}, stderr {run.err!r}"
    assert "Traceback" not in run.err, run.err
    lines = run.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX), run.err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    assert capture(scratch) == before, "something changed"
    return lines[0]


def take_good_snapshot(scratch: Scratch) -> None:
    run = bounded(scratch, "snapshot-create", "-n", "good", "web")
    assert run.code == 0, run.err


def test_domain_config_that_is_dev_zero_is_refused(scratch: Scratch) -> None:
    take_good_snapshot(scratch)
    scratch.config.unlink()
    scratch.config.symlink_to("/dev/zero")
    before = capture(scratch)
    assert_refused(bounded(scratch, "snapshot-create", "-n", "s2", "web"), scratch, before,
                   f"cannot read config file {scratch.config}: it is a character device")


def test_snapshot_config_that_is_dev_zero_is_refused(scratch: Scratch) -> None:
    take_good_snapshot(scratch)
    before = capture(scratch)
    assert_refused(bounded(scratch, "snapshot-create", "web", "/dev/zero"), scratch, before,
                   "cannot read config file /dev/zero: it is a character device")


def test_snapshot_config_that_is_a_fifo_is_refused_without_waiting(scratch: Scratch) -> None:
    take_good_snapshot(scratch)
    fifo = scratch.root / "snap.cfg"
    os.mkfifo(fifo)
    before = capture(scratch)
    assert_refused(bounded(scratch, "snapshot-create", "web", str(fifo)), scratch, before,
                   f"cannot read config file {fifo}: it is a FIFO")


def test_domain_config_that_is_a_fifo_is_refused_without_waiting(scratch: Scratch) -> None:
    take_good_snapshot(scratch)
    scratch.config.unlink()
    os.mkfifo(scratch.config)
    before = capture(scratch)
    assert_refused(bounded(scratch, "snapshot-create", "-n", "s2", "web"), scratch, before,
                   f"cannot read config file {scratch.config}: it is a FIFO")


def _padded(scratch: Scratch, size: int) -> Path:
    """A valid snapshot config padded with comments to ``size`` bytes."""
    body = 'name = "big"\n'
    path = scratch.root / "snap.cfg"
    line = "#" + "x" * 99 + "\n"
    path.write_text(body + line * ((size - len(body)) // len(line)))
    return path


def test_a_config_over_the_size_limit_is_refused_and_the_limit_can_be_raised(
        scratch: Scratch) -> None:
    take_good_snapshot(scratch)
    big = _padded(scratch, 2 << 20)
    before = capture(scratch)
    assert_refused(bounded(scratch, "snapshot-create", "web", str(big)), scratch, before,
                   f"cannot read config file {big}: larger than 1048576 bytes",
                   "XLSNAP_MAX_CONFIG_BYTES")
    run = bounded(scratch, "snapshot-create", "web", str(big),
                  XLSNAP_MAX_CONFIG_BYTES=str(4 << 20))
    assert run.code == 0, run.err
    assert "big" in run.out


@pytest.mark.parametrize("value", ["0", "-1", "1M", "lots"])
def test_a_bad_size_limit_is_refused(scratch: Scratch, value: str) -> None:
    take_good_snapshot(scratch)
    before = capture(scratch)
    assert_refused(bounded(scratch, "snapshot-create", "-n", "s2", "web",
                           XLSNAP_MAX_CONFIG_BYTES=value), scratch, before,
                   "XLSNAP_MAX_CONFIG_BYTES must be a positive number of bytes")


def test_a_domain_config_that_is_a_symlink_loop_is_named_so(scratch: Scratch) -> None:
    take_good_snapshot(scratch)
    scratch.config.unlink()
    loop = scratch.config_dir / "loop.cfg"
    scratch.config.symlink_to(loop)
    loop.symlink_to(scratch.config)
    before = capture(scratch)
    message = assert_refused(bounded(scratch, "snapshot-create", "-n", "s2", "web"), scratch,
                             before, f"cannot read config file {scratch.config}: symlink loop")
    assert "no config file" not in message


def test_a_domain_config_that_is_a_dangling_link_is_named_so(scratch: Scratch) -> None:
    take_good_snapshot(scratch)
    scratch.config.unlink()
    scratch.config.symlink_to(scratch.root / "gone.cfg")
    before = capture(scratch)
    assert_refused(bounded(scratch, "snapshot-create", "-n", "s2", "web"), scratch, before,
                   f"cannot read config file {scratch.config}: dangling symbolic link")
