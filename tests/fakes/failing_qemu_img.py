#!/usr/bin/env python3
"""A qemu-img that fails on request and otherwise runs the real one.

Models: real qemu-img's failure shape (exit 1, ``qemu-img: ...`` on stderr). Rules come
from ``XLSNAP_TEST_FAIL``, a JSON list of rules; a rule is a list of substrings that
must all occur in the argv, optionally limited by ``"#N"`` (fail only the N-th
matching call, counted in the file named by ``XLSNAP_TEST_FAIL_COUNTER``) or
``"#sleep=S"`` (hang S seconds first, as a stuck tool does, then fail), and ``"#pass"``
(after the sleep, run the real one: a slow tool that succeeds).
Everything else is handed to the real ``qemu-img`` unchanged.
"""

from __future__ import annotations

import json
import os
import sys
import time


def _matches(rule: list[str], argv: list[str]) -> bool:
    joined = " ".join(argv)
    return all(part in joined for part in rule if not part.startswith("#"))


def _nth_call(rule: list[str]) -> bool:
    wanted = [int(p[1:]) for p in rule if p.startswith("#") and p[1:].isdigit()]
    if not wanted:
        return True
    counter = os.environ.get("XLSNAP_TEST_FAIL_COUNTER", "")
    count = int(open(counter).read() or 0) + 1 if os.path.exists(counter) else 1
    with open(counter, "w") as handle:
        handle.write(str(count))
    return count == wanted[0]


def main() -> None:
    argv = sys.argv[1:]
    for rule in json.loads(os.environ.get("XLSNAP_TEST_FAIL", "[]")):
        if _matches(rule, argv) and _nth_call(rule):
            for part in rule:
                if part.startswith("#sleep="):
                    time.sleep(float(part[len("#sleep="):]))
            if "#pass" in rule:
                break
            print(f"qemu-img: injected failure for: {' '.join(argv)}", file=sys.stderr)
            sys.exit(1)
    real = os.environ.get("XLSNAP_REAL_QEMU_IMG", "/usr/bin/qemu-img")
    os.execv(real, [real, *argv])


if __name__ == "__main__":
    main()
