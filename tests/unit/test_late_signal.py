"""A SIGTERM that arrives once the command is over (while Python exits) changes nothing: no
traceback, the command's exit code. The live interrupt test met it as exit -15 when its
signal came 0.2 s after the intent and the create had just finished."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

LATE = """
import atexit, os, signal, sys
atexit.register(lambda: os.kill(os.getpid(), signal.SIGTERM))   # during Python's exit
sys.argv = ["xlsnap", "--no-service", *sys.argv[1:]]
from commands.service.client import entry_point
entry_point()
"""


def test_a_signal_after_the_command_is_over_changes_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {"PATH": "/usr/bin:/bin", "XLSNAP_HOME": str(tmp_path / "home"),
           "XLSNAP_CONFIG_DIR": str(tmp_path)}
    for argv, code in ((["domains"], 0), (["snapshot-list", "nosuch"], 2)):
        run = subprocess.run([sys.executable, "-c", LATE, *argv], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == code, (run.returncode, run.stderr)
        assert "Traceback" not in run.stderr and "KeyboardInterrupt" not in run.stderr, run.stderr
