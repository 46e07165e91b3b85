"""A short random-kill campaign (scripts/kill_campaign.py): stopped and live, seeded.

Each round kills xlsnap at a random moment, runs ``recover``, and reads back every
snapshot's and the current disks' guest-visible content against the model.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO, requires_qemu_img

pytestmark = [pytest.mark.slow, requires_qemu_img]


def test_short_kill_campaign_loses_nothing() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "kill_campaign.py"),
                           "--seed", "5", "--seconds", "140"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = dict(re.findall(r"^  ([a-z -]+): (\d+)$", proc.stdout, re.M))
    assert int(figures["kills"]) > 0 and int(figures["recovers"]) > 0
    assert int(figures["snapshot images read"]) > 0
    assert proc.stdout.count("content or check mismatches: 0") == proc.stdout.count("rounds:")
