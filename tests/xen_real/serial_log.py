"""What scripts/xen_in_qemu/scenarios.sh printed on dom0's console, read from the serial log.

Lines (each alone on its line; Xen's own console lines around them are ignored):
``XLSNAP-SCENARIO <name> PASS|FAIL <seconds>s <detail>``, ``XLSNAP-PHASE <name> <seconds>``,
``XLSNAP-DONE``, and real xl's output as ``XLSNAP-XL-BEGIN xl ARGS`` /
``XLSNAP-XL-OUT line`` / ``XLSNAP-XL-ERR line`` / ``XLSNAP-XL-END rc=N``; the calls of the
``xl-transcript`` scenario end at ``XLSNAP-XL-TRANSCRIPT-END``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class XlCall:
    """One real xl invocation: its arguments, stdout and stderr lines, exit code."""

    argv: list[str]
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    rc: int | None = None


@dataclass
class SerialLog:
    """The parsed log: scenario outcomes in order, phases, xl calls, whether it finished."""

    scenarios: dict[str, tuple[str, str]]
    phases: dict[str, int]
    xl_calls: list[XlCall]
    done: bool
    transcript_end: int | None = None  # xl_calls[:transcript_end] are xl-transcript's


def parse(text: str) -> SerialLog:
    """Parse a serial log's text (carriage returns allowed)."""
    scenarios: dict[str, tuple[str, str]] = {}
    phases: dict[str, int] = {}
    calls: list[XlCall] = []
    done = False
    transcript_end = None
    current: XlCall | None = None
    for raw in text.replace("\r", "").splitlines():
        word, _, rest = raw.partition(" ")
        if word == "XLSNAP-SCENARIO":
            name, _, tail = rest.partition(" ")
            status, _, detail = tail.partition(" ")
            scenarios[name] = (status, detail)
        elif word == "XLSNAP-PHASE":
            name, _, secs = rest.partition(" ")
            if secs.isdigit():
                phases[name] = int(secs)
        elif word == "XLSNAP-DONE":
            done = True
        elif word == "XLSNAP-XL-TRANSCRIPT-END":
            transcript_end = len(calls)
        elif word == "XLSNAP-XL-BEGIN":
            current = XlCall(rest.split()[1:])
            calls.append(current)
        elif word == "XLSNAP-XL-OUT" and current is not None:
            current.out.append(raw[len(word) + 1:])
        elif word == "XLSNAP-XL-ERR" and current is not None:
            current.err.append(raw[len(word) + 1:])
        elif word == "XLSNAP-XL-END" and current is not None:
            current.rc = int(rest.removeprefix("rc=")) if rest.removeprefix("rc=").isdigit() else None
            current = None
    return SerialLog(scenarios, phases, calls, done, transcript_end)


def read(path: Path) -> SerialLog:
    """Parse the serial log at PATH (bytes that are not UTF-8 are replaced)."""
    return parse(path.read_bytes().decode("utf-8", "replace"))
