"""The help of the live options: each says what it does and shows an example."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


def _help(*argv: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "commands", *argv, "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=60,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("argv, fragments", [
    ((), ["--toolstack", "XLSNAP_TOOLSTACK", "--qmp-dir", "XLSNAP_QMP_DIR", "--verbose",
          "xlsnap --qmp-dir /run/qemu snapshot-create vm1"]),
    (("snapshot-create",), ["--disk-only", "crash-consistent", "xl save -p",
                            "xlsnap snapshot-create --disk-only -n nightly web"]),
    (("snapshot-revert",), ["--running", "--paused", "--force", "exit 3",
                            "xlsnap snapshot-revert --paused -n before-upgrade web"]),
    (("snapshot-delete",), ["memory image", "through QMP"]),
])
def test_help_names_the_live_options_with_examples(argv: tuple[str, ...],
                                                   fragments: list[str]) -> None:
    text = " ".join(_help(*argv).split())
    for fragment in fragments:
        assert fragment in text, fragment
