"""``wrap``: a snapshot before a command and one after it, linked, as snapper's pre/post.

The command runs as given (an argv list, no shell), with the terminal, and no timeout:
an upgrade takes what it takes. Its exit code is recorded in the post snapshot's
description and returned. No command runs when the pre snapshot fails.
"""

from __future__ import annotations

import shlex
import subprocess
import time
import uuid
from typing import Any

from commands.handlers.create import create_snapshot
from commands.errors import UsageError
from commands.handlers.messages import CreateSnapshot
from commands.bootstrap import Services


def wrap_command(svc: Services, domain: str, base: str | None, argv: list[str],
                 disk_only: bool = False) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Snapshot ``BASE-pre``, run ``argv``, snapshot ``BASE-post``; returns both records
    and the command's exit code."""
    if not argv:
        raise UsageError("no command to wrap: xlsnap wrap DOMAIN -- COMMAND ARGS...")
    base = base or f"wrap-{int(time.time())}"
    pair = str(uuid.uuid4())
    shown = shlex.join(argv)
    pre = create_snapshot(CreateSnapshot(
        domain, f"{base}-pre", disk_only=disk_only, description=f"pre: {shown}",
        extra={"wrap": {"pair": pair, "role": "pre", "command": argv, "partner": f"{base}-post"}}),
        svc)
    try:
        code = subprocess.run(argv, check=False).returncode     # noqa: S603 (argv, no shell)
    except OSError as exc:
        code = 127 if isinstance(exc, FileNotFoundError) else 126
    post = create_snapshot(CreateSnapshot(
        domain, f"{base}-post", disk_only=disk_only,
        description=f"post: {shown} exited {code}",
        extra={"wrap": {"pair": pair, "role": "post", "command": argv, "exit_code": code,
                        "partner": f"{base}-pre"}}), svc)
    return pre, post, code
