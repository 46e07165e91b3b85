#!/usr/bin/python3
"""One QMP command on a device model's socket, for the real-Xen tier's records (dom0 side).

  qmp_call.py SOCKET COMMAND [ARGUMENTS-JSON]     prints the reply as one JSON line

Standard library only; a fresh connection, closed at once (libxl's QMP socket serves one
client at a time, and libxl itself needs it during ``xl save``).
"""

from __future__ import annotations

import json
import socket
import sys


def call(sock_path: str, command: str, arguments: dict | None = None) -> dict:
    """Negotiate, run COMMAND, return its reply (``return`` or ``error``)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(60)
        sock.connect(sock_path)
        stream = sock.makefile("rw", encoding="utf-8", newline="\n")
        stream.readline()  # the greeting
        reply: dict = {}
        for cmd, args in (("qmp_capabilities", None), (command, arguments)):
            msg: dict = {"execute": cmd}
            if args is not None:
                msg["arguments"] = args
            stream.write(json.dumps(msg) + "\n")
            stream.flush()
            reply = {}
            while "return" not in reply and "error" not in reply:  # events are skipped
                reply = json.loads(stream.readline())
            if "error" in reply:
                break
        return reply


def main(argv: list[str]) -> int:
    args = json.loads(argv[3]) if len(argv) > 3 else None
    reply = call(argv[1], argv[2], args)
    print(json.dumps(reply))
    return 1 if "error" in reply else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
