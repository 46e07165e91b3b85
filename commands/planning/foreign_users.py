"""Images of this domain that another domain's disk stands on (its backing chain).

A merge writes into a base or removes files; if another domain's disk is an overlay
on one of them (a clone made by hand), that domain would lose data. The domains are
the configs in the config folder; each disk's chain is read with ``qemu-img -U``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from commands.config.domains import load_domain
from commands.drivers.process import run
from commands.errors import XlsnapError


def _chain(binary: str, image: str) -> list[str]:
    result = run([binary, "info", "-U", "--backing-chain", "--output=json", image], timeout=60)
    if not result.ok:
        return []
    return [str(i.get("filename")) for i in json.loads(result.stdout)]


def foreign_users(config_dir: Path, own: str, images: Iterable[str],
                  binary: str = "qemu-img") -> dict[str, str]:
    """Each of ``images`` that another domain's disk chain holds -> "domain disk (path)"."""
    wanted = {os.path.realpath(p): p for p in images}
    found: dict[str, str] = {}
    if not wanted or not config_dir.is_dir():
        return found
    for cfg in sorted(config_dir.glob("*.cfg")):
        if cfg.stem == own:
            continue
        try:
            domain = load_domain(config_dir, cfg.stem)
        except (XlsnapError, OSError, ValueError):
            continue
        for entry in domain.disks:
            target = entry.spec.target
            if not target or not os.path.exists(target):
                continue
            for image in _chain(binary, target):
                real = os.path.realpath(image)
                if real in wanted and real != os.path.realpath(target):
                    found.setdefault(wanted[real], f"domain {domain.name!r} disk "
                                                   f"{entry.spec.vdev!r} ({target})")
    return found
