"""Run one external program: an argv list, never a shell, always a timeout."""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass, field

log = logging.getLogger("xlsnap.drivers")

DEFAULT_TIMEOUT = 120.0


@dataclass(frozen=True)
class ProcessResult:
    """What a program did: its argv, exit code, output and how long it took."""

    argv: list[str]
    returncode: int
    stdout: str = ""
    stderr: str = ""
    duration_ms: float = 0.0
    detail: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def error_line(self) -> str:
        """stderr's first non-empty line: what a message shows (the ledger keeps it all)."""
        return next((line.strip() for line in self.stderr.splitlines() if line.strip()), "")

    def summary(self) -> dict[str, object]:
        """The part worth recording in the ledger (stderr cut to 2 KiB)."""
        return {
            "argv": self.argv,
            "returncode": self.returncode,
            "stderr": self.stderr[-2048:],
            "duration_ms": round(self.duration_ms, 3),
            **self.detail,
        }


class DriverError(Exception):
    """A side effect failed; ``result`` says how (its stderr is the message)."""

    def __init__(self, message: str, result: ProcessResult) -> None:
        super().__init__(message)
        self.result = result


class ToolMissing(DriverError):
    """The program is not installed."""


class ToolTimeout(DriverError):
    """The program ran past its timeout and was killed."""


def run(argv: list[str], timeout: float = DEFAULT_TIMEOUT) -> ProcessResult:
    """Run ``argv`` and return its result; raises only for a missing tool or a timeout."""
    log.debug("run %s", argv)
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, errors="replace",
            timeout=timeout, check=False, stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        result = ProcessResult(argv, 127, "", f"{argv[0]}: not found", _ms(start))
        raise ToolMissing(f"{argv[0]} is not installed (not found on PATH)", result) from None
    except subprocess.TimeoutExpired:
        result = ProcessResult(argv, -9, "", f"timed out after {timeout:g}s", _ms(start))
        raise ToolTimeout(f"{argv[0]} timed out after {timeout:g}s", result) from None
    return ProcessResult(argv, proc.returncode, proc.stdout, proc.stderr, _ms(start))


def run_together(argvs: list[list[str]], timeout: float = DEFAULT_TIMEOUT
                 ) -> list[ProcessResult | None]:
    """Run several read-only programs at once (as ``run`` runs one); each result, or None
    for one that could not start or ran past ``timeout`` (then killed)."""
    start = time.perf_counter()
    procs: list[subprocess.Popen[str] | None] = []
    for argv in argvs:
        log.debug("run %s", argv)
        try:
            procs.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True, errors="replace"))
        except OSError:
            procs.append(None)
    results: list[ProcessResult | None] = []
    for argv, proc in zip(argvs, procs):
        if proc is None:
            results.append(None)
            continue
        try:
            out, err = proc.communicate(timeout=max(0.0, timeout - (time.perf_counter() - start)))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            results.append(None)
            continue
        results.append(ProcessResult(argv, proc.returncode, out, err, _ms(start)))
    return results


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
