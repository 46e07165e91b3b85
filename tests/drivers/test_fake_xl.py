"""The fake xl itself follows real xl's output formats and exit codes."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

from tests.fakes.fake_xl_state import FakeDisk, FakeXl


def xl(fake: FakeXl, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([fake.binary, *args], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", **fake.env()})


def test_short_list_matches_xl_format(tmp_path: Path) -> None:
    fake = FakeXl(tmp_path)
    fake.add_domain("web", domid=3, vcpus=2, state="paused")
    out = xl(fake, "list").stdout.splitlines()
    assert out[0] == "Name                                        ID   Mem VCPUs\tState\tTime(s)"
    assert out[1].startswith("Domain-0 ")
    assert out[2] == f"{'web':<40} {3:5d} {512:5d} {2:5d}     --p---  {1.5:8.1f}"


def test_list_long_is_an_indented_json_array_with_defaults_omitted(tmp_path: Path) -> None:
    fake = FakeXl(tmp_path)
    fake.add_domain("web", domid=3, disks=[FakeDisk("/i/ro.qcow2", "xvda", access="ro")])
    proc = xl(fake, "list", "-l", "web")
    assert proc.stdout.startswith('[\n    {\n        "domid": 3,')
    [entry] = json.loads(proc.stdout)
    assert "readwrite" not in entry["config"]["disks"][0]
    assert entry["config"]["c_info"]["run_hotplug_scripts"] == "True"


def test_usage_errors_exit_2_and_unknown_domains_exit_1(tmp_path: Path) -> None:
    fake = FakeXl(tmp_path)
    proc = xl(fake, "save", "web")
    assert proc.returncode == 2
    assert proc.stderr.startswith("'xl save' requires at least 2 arguments.")
    proc = xl(fake, "save", "-q", "web", "f")
    assert (proc.returncode, proc.stderr) == (2, "option `q' not supported.\n")
    proc = xl(fake, "pause", "ghost")
    assert (proc.returncode, proc.stderr) == (1, "ghost is an invalid domain identifier "
                                                 "(rc=-6)\n")
    proc = xl(fake, "domname", "44")
    assert proc.returncode == 1
    assert proc.stderr == ("Can't get domain name of domain id '44', "
                           "maybe this domain does not exist.\n")


def test_pause_of_a_missing_domid_exits_zero_like_xl_4_17(tmp_path: Path) -> None:
    proc = xl(FakeXl(tmp_path), "pause", "44")
    assert proc.returncode == 0 and "libxl: error:" in proc.stderr


def test_save_file_has_xl_header_and_config(tmp_path: Path) -> None:
    fake = FakeXl(tmp_path)
    fake.add_domain("web")
    xl(fake, "save", "-c", "web", str(tmp_path / "web.save"))
    data = (tmp_path / "web.save").read_bytes()
    assert data[:32] == b"Xen saved domain, xl format\n \0 \r"  # exactly 32 bytes
    byteorder, mandatory, _, optlen = struct.unpack("=IIII", data[32:48])
    assert (byteorder, mandatory) == (0x01020304, 3)
    (length,) = struct.unpack("=I", data[48:52])
    assert json.loads(data[52:52 + length - 1])["c_info"]["name"] == "web"
    assert optlen == length + 4


def test_domids_are_never_reused(tmp_path: Path) -> None:
    fake = FakeXl(tmp_path)
    fake.add_domain("web")
    xl(fake, "save", "web", str(tmp_path / "s"))        # destroys web (domid 1)
    assert xl(fake, "restore", str(tmp_path / "s")).returncode == 0
    assert xl(fake, "domid", "web").stdout == "2\n"


def test_every_call_is_logged_even_without_hypervisor(tmp_path: Path) -> None:
    fake = FakeXl(tmp_path)
    proc = subprocess.run([fake.binary, "list"], capture_output=True, text=True, timeout=30,
                          env={**fake.env(), "XLSNAP_FAKE_XL_NO_HYPERVISOR": "1"})
    assert (proc.returncode, proc.stderr) == (1, "ERROR:  Can't find hypervisor information "
                                                 "in sysfs!\n")
    assert fake.calls() == [["list"]]


def test_help_is_xl_s_own_from_its_command_table(tmp_path: Path) -> None:
    """xl.c help() with xl_cmdtable.c's entry (4.17.5: save at xl_cmdtable.c:155)."""
    proc = xl(FakeXl(tmp_path), "save", "-h")
    assert proc.returncode == 0
    assert proc.stdout.startswith(
        "Usage: xl [-vtTN] save [options] <Domain> <CheckpointFile> [<ConfigFile>]\n\n"
        "Save a domain state to restore later.\n\nOptions:\n\n-h  Print this help.\n"
        "-c  Leave domain running after creating the snapshot.\n")
    listed = xl(FakeXl(tmp_path), "list", "--help")
    assert listed.stdout.startswith("Usage: xl [-vtT] list [options] [Domain]\n")
