"""The fake xl (tests/fakes/xl) checked against real xl 4.17's own output.

scenarios.sh's ``xl-transcript`` ran a sequence of xl commands on a real PV domain
``xlraw`` (list, domid, domname, pause, unpause twice, save -p, restore -p while the domain
exists and after destroy, save, restore, and every command on a domain that does not
exist). The same sequence is replayed here against the fake, on a fake ``xlraw``, and
each call's exit code, stderr and stdout shape are compared. What differs only by nature
is normalised first: domids, paths, libxl's source positions (the fake leaves them out),
the config's length in the save header, libxc's ``xc:`` lines (the fake writes no libxc
stream). Every difference is listed in one failure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.fake_xl_state import FAKE_XL, FakeDisk, FakeXl
from tests.xen_real.serial_log import SerialLog, XlCall

pytestmark = pytest.mark.xen_real

MODELLED = {"list", "domid", "domname", "pause", "unpause", "destroy", "save", "restore"}
ROW = re.compile(r"^\S.{0,39}\s* \s*\d+ \s*\d+ \s*\d+     [r-][b-][p-][s-][a-z-][d-]  \s*\d+\.\d$")
HEADER = "Name                                        ID   Mem VCPUs\tState\tTime(s)"


def normalise_err(lines: list[str], tmp: str) -> list[str]:
    """stderr lines with what differs by nature replaced (see the module docstring)."""
    out = []
    for line in lines:
        if line.startswith("xc: "):
            continue
        line = line.replace(tmp, "/tmp")
        line = re.sub(r"^(libxl: error: \w+\.c):\d+:\w+:", r"\1:", line)
        line = re.sub(r"Domain \d+:", "Domain N:", line)
        line = re.sub(r"\(info 0x3/0x0/\d+\)", "(info 0x3/0x0/LEN)", line)
        line = re.sub(r"xl fmt info 0x3/0x0/\d+\)", "xl fmt info 0x3/0x0/LEN)", line)
        out.append(line)
    return out


def keys(value: object) -> set[str]:
    return set(value) if isinstance(value, dict) else set()


def compare_stdout(call: XlCall, fake_out: list[str]) -> list[str]:
    """Differences of shape between real and fake stdout for one call."""
    what = " ".join(call.argv)
    real = [line for line in call.out if line.strip()]
    fake = [line for line in fake_out if line.strip()]
    if call.argv[0] == "list" and "-l" not in call.argv:
        diffs = []
        if len(real) != len(fake):
            diffs.append(f"xl {what}: {len(real)} lines real, {len(fake)} fake")
        for label, lines in (("real", real), ("fake", fake)):
            if lines and lines[0] != HEADER:
                diffs.append(f"xl {what}: {label} header {lines[0]!r}")
            diffs += [f"xl {what}: {label} row {row!r} not in xl's format"
                      for row in lines[1:] if not ROW.match(row)]
        return diffs
    if call.argv[0] == "list":
        if not real or not fake:
            return [] if not real and not fake else [f"xl {what}: stdout real {len(real)} "
                                                     f"lines, fake {len(fake)} lines"]
        real_dom, fake_dom = json.loads("\n".join(call.out))[0], json.loads("\n".join(fake_out))[0]
        diffs = []
        pairs = [("element", real_dom, fake_dom),
                 ("config", real_dom["config"], fake_dom["config"]),
                 ("c_info", real_dom["config"]["c_info"], fake_dom["config"]["c_info"]),
                 ("disks[0]", real_dom["config"].get("disks", [{}])[0],
                  fake_dom["config"].get("disks", [{}])[0])]
        for label, r, f in pairs:
            if label == "config":  # b_info, on_* differ with the domain type and its config
                continue
            if keys(r) != keys(f):
                diffs.append(f"xl {what}: {label} keys: only real {sorted(keys(r) - keys(f))}, "
                             f"only fake {sorted(keys(f) - keys(r))}")
        return diffs
    if len(real) != len(fake):
        return [f"xl {what}: stdout real {real!r}, fake {fake!r}"]
    return []


def test_the_fake_xl_answers_as_real_xl_did(xen_log: SerialLog, tmp_path: Path) -> None:
    assert xen_log.transcript_end is not None, "the xl-transcript scenario did not finish"
    calls = xen_log.xl_calls[:xen_log.transcript_end]
    created = [c for c in calls if c.argv[:1] == ["create"]]
    assert created and created[0].rc == 0, "the transcript has no successful xl create"
    start = calls.index(created[0]) + 1
    transcript = [c for c in calls[start:] if c.argv and c.argv[0] in MODELLED]
    assert len(transcript) >= 20, f"the transcript is short: {len(transcript)} calls"

    fake = FakeXl(tmp_path / "xl")
    fake.add_domain("xlraw", disks=[FakeDisk("/var/lib/xen/images/xlraw.qcow2", "xvda")],
                    memory_mib=128)
    env = {**os.environ, **fake.env()}
    tmp = str(tmp_path)
    diffs = []
    for call in transcript:
        argv = [a.replace("/tmp/", f"{tmp}/") for a in call.argv]
        if argv[0] == "domname" and call.out == ["xlraw"]:
            dom = fake.domain("xlraw")
            assert dom is not None
            argv = ["domname", str(dom["domid"])]
        proc = subprocess.run([sys.executable, str(FAKE_XL), *argv], capture_output=True,
                              text=True, env=env, timeout=60)
        what = " ".join(call.argv)
        if proc.returncode != call.rc:
            diffs.append(f"xl {what}: exit {call.rc} real, {proc.returncode} fake")
        real_err = normalise_err(call.err, tmp)
        fake_err = normalise_err(proc.stderr.splitlines(), tmp)
        if real_err != fake_err:
            diffs.append(f"xl {what}: stderr real {real_err!r}, fake {fake_err!r}")
        diffs += compare_stdout(call, proc.stdout.splitlines())
    assert not diffs, "the fake xl differs from real xl 4.17:\n" + "\n".join(diffs)
