"""Unit tests of the xl driver's parsers: `xl list -l` JSON, the short table, errors."""

from __future__ import annotations

import pytest

from commands.drivers.process import ProcessResult
from commands.drivers.xl import (
    DomainNotFound,
    DomainState,
    NoHypervisor,
    NotPrivileged,
    XlError,
    XlOutputError,
    _error,
    flag,
    parse_list,
    parse_list_long,
)

LIST_LONG = """[
    {
        "domid": 7,
        "config": {
            "c_info": {
                "type": "hvm",
                "name": "web",
                "uuid": "6a1c2f0e-8f7b-4a53-9a0e-2b1d3c4e5f60",
                "run_hotplug_scripts": "True"
            },
            "disks": [
                {
                    "pdev_path": "/dev/vg/guest",
                    "vdev": "xvdb",
                    "backend": "phy",
                    "format": "raw",
                    "readwrite": 1
                },
                {
                    "pdev_path": "/srv/ro.qcow2",
                    "vdev": "xvdc",
                    "format": "qcow2",
                    "discard_enable": "False"
                },
                {
                    "vdev": "hdc",
                    "is_cdrom": "True",
                    "removable": 1
                }
            ]
        }
    }
]
"""


def test_reads_domains_and_disks_from_list_long_json() -> None:
    [dom] = parse_list_long(LIST_LONG)
    assert (dom.domid, dom.name, dom.type) == (7, "web", "hvm")
    assert dom.uuid == "6a1c2f0e-8f7b-4a53-9a0e-2b1d3c4e5f60"
    assert [d.vdev for d in dom.disks] == ["xvdb", "xvdc", "hdc"]
    assert dom.disks[0].pdev_path == "/dev/vg/guest" and dom.disks[0].readwrite


def test_omitted_fields_take_libxl_defaults() -> None:
    _, read_only, cdrom = parse_list_long(LIST_LONG)[0].disks
    assert read_only.readwrite is False          # no "readwrite" key: read-only
    assert read_only.backend == "unknown"        # LIBXL_DISK_BACKEND_UNKNOWN
    assert cdrom.pdev_path is None and cdrom.format == "unknown"


def test_defbool_strings_are_booleans() -> None:
    cdrom = parse_list_long(LIST_LONG)[0].disks[2]
    assert cdrom.is_cdrom is True and cdrom.removable is True
    assert flag("True") is True and flag("False") is False
    assert flag(1) is True and flag(0) is False and flag(None) is False
    assert flag("<default>", default=True) is True
    with pytest.raises(ValueError):
        flag("maybe")


def test_empty_output_is_no_domains() -> None:
    assert parse_list_long("") == []
    assert parse_list_long("[\n]\n") == []


def test_refuses_sxp_output_with_a_clear_message() -> None:
    sxp = "(domain\n\t(domid 7)\n\t(create_info)\n\t\t(name web)\n)\n"
    with pytest.raises(XlOutputError, match='output_format="sxp".*/etc/xen/xl.conf'):
        parse_list_long(sxp)


def test_invalid_json_is_an_output_error() -> None:
    with pytest.raises(XlOutputError, match="invalid JSON"):
        parse_list_long("[{]")


def test_parses_the_short_list_table() -> None:
    out = ("Name                                        ID   Mem VCPUs\tState\tTime(s)\n"
           "Domain-0                                     0  4096     2     r-----     123.4\n"
           "my web server                               12   512     1     --p---       1.5\n"
           "db                                          13  1024     2     -b----      10.0\n"
           "old                                         14  1024     2     ---sc-      10.0\n")
    rows = parse_list(out)
    assert [(r.name, r.domid) for r in rows] == [("Domain-0", 0), ("my web server", 12),
                                                 ("db", 13), ("old", 14)]
    assert [r.state for r in rows] == [DomainState.RUNNING, DomainState.PAUSED,
                                       DomainState.BLOCKED, DomainState.SHUTDOWN]
    assert rows[1].memory_mib == 512 and rows[3].cpu_time == 10.0


@pytest.mark.parametrize("flags, state", [
    ("r-----", DomainState.RUNNING), ("------", DomainState.RUNNING),
    ("-b----", DomainState.BLOCKED), ("--p---", DomainState.PAUSED),
    ("-bp---", DomainState.PAUSED), ("---s--", DomainState.SHUTDOWN),
    ("---sr-", DomainState.SHUTDOWN), ("--ps-d", DomainState.DYING),
])
def test_state_column_maps_to_one_word(flags: str, state: DomainState) -> None:
    assert DomainState.from_flags(flags) is state


def _result(stderr: str, code: int = 1) -> ProcessResult:
    return ProcessResult(["xl", "list"], code, "", stderr)


def test_debian_wrapper_without_xen_is_no_hypervisor_in_one_line() -> None:
    error = _error(_result("ERROR:  Can't find hypervisor information in sysfs!\n"))
    assert isinstance(error, NoHypervisor)
    assert str(error) == ("no Xen hypervisor is running on this host "
                          "(xl: Can't find hypervisor information in sysfs!)")


def test_bare_xl_binary_without_xen_is_no_hypervisor() -> None:
    stderr = ("xencall: error: Could not obtain handle on privileged command interface: "
              "No such file or directory\nlibxl: error: libxl.c:102:libxl_ctx_alloc: cannot "
              "open libxc handle: No such file or directory\ncannot init xl context\n")
    error = _error(_result(stderr))
    assert isinstance(error, NoHypervisor) and "\n" not in str(error)


def test_a_user_who_is_not_root_is_told_so() -> None:
    stderr = ("xencall: error: Could not obtain handle on privileged command interface: "
              "Permission denied\nlibxl: error: libxl.c:102:libxl_ctx_alloc: cannot "
              "open libxc handle: Permission denied\ncannot init xl context\n")
    error = _error(_result(stderr))
    assert isinstance(error, NotPrivileged) and not isinstance(error, NoHypervisor)
    assert str(error) == ("xl needs root: it could not open Xen's privileged command "
                          "interface (Permission denied); run xlsnap as root")


@pytest.mark.parametrize("stderr", [
    "web is an invalid domain identifier (rc=-6)\n",
    "Can't get domid of domain name 'web', maybe this domain does not exist.\n",
    "libxl: error: ...: Domain 9:Getting domain info: No such process\n"
    "Error: Domain '9' does not exist.\n",
])
def test_unknown_domains_are_domain_not_found(stderr: str) -> None:
    assert isinstance(_error(_result(stderr)), DomainNotFound)


def test_other_failures_keep_the_telling_line() -> None:
    error = _error(_result("Saving to /x new xl format (info 0x3/0x0/931)\n"
                           "libxl: error: ...: saving domain: timed out\n"
                           "Failed to save domain, resuming domain\n"))
    assert type(error) is XlError
    assert str(error) == "Failed to save domain, resuming domain"
