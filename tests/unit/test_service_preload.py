"""xlsnapd's workers are forked from a parent that imported what commands need: a lazy
import left out is paid by every request (the QMP client's asyncio and ssl: ~60 ms)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

LAZY = ["asyncio", "ssl", "qemu.qmp", "qemu.qmp.protocol", "eventsourcing.sqlite"]


def test_the_parent_imports_the_qmp_client_before_forking() -> None:
    code = ("import json, sys\nfrom commands.service.daemon import preload\npreload()\n"
            f"print(json.dumps([m for m in {LAZY!r} if m not in sys.modules]))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
