"""The serial-log reader of the real-Xen tier, on a log shaped like a real one (fast)."""

from __future__ import annotations

from tests.xen_real.serial_log import parse

# Abridged from a real run's serial.log: Xen's lines, CRs, dom0's lines in between.
LOG = (
    "(XEN) Xen version 4.17.5 (Debian 4.17.5+72-g01140da4e8-1)\r\n"
    "XLSNAP-PHASE dom0-init 0\r\n"
    "XLSNAP-SCENARIO xen-host PASS 0s xen 4.17.5\r\n"
    "XLSNAP-XL-BEGIN xl domid nosuch\r\n"
    "XLSNAP-XL-ERR Can't get domid of domain name 'nosuch', maybe this domain does not exist.\r\n"
    "XLSNAP-XL-END rc=1\r\n"
    "XLSNAP-XL-BEGIN xl list -l pv1\r\n"
    "XLSNAP-XL-OUT [\r\n"
    "XLSNAP-XL-OUT \r\n"
    "XLSNAP-XL-OUT ]\r\n"
    "XLSNAP-XL-END rc=0\r\n"
    "XLSNAP-XL-TRANSCRIPT-END\r\n"
    "XLSNAP-SCENARIO pv1-create-disk-only FAIL 6s rc=1: xlsnap: error: QMP transaction: x\r\n"
    "XLSNAP-PHASE pv1-end 134\r\n"
)


def test_scenarios_phases_and_xl_calls_are_read() -> None:
    log = parse(LOG)
    assert log.scenarios == {
        "xen-host": ("PASS", "0s xen 4.17.5"),
        "pv1-create-disk-only": ("FAIL", "6s rc=1: xlsnap: error: QMP transaction: x"),
    }
    assert log.phases == {"dom0-init": 0, "pv1-end": 134}
    assert not log.done
    first, second = log.xl_calls
    assert first.argv == ["domid", "nosuch"] and first.rc == 1 and first.out == []
    assert first.err == ["Can't get domid of domain name 'nosuch', maybe this domain does not exist."]
    assert second.argv == ["list", "-l", "pv1"] and second.out == ["[", "", "]"]
    assert log.transcript_end == 2


def test_done_marks_a_finished_run() -> None:
    assert parse(LOG + "XLSNAP-DONE\r\n").done
