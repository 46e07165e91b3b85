"""The ``offline`` adapter: a stopped domain described by ``<config-dir>/<name>.cfg``.

Its disks are handled with qemu-img; it has no memory state to save or restore.
"""

from __future__ import annotations

import os
from pathlib import Path

from commands.config.domains import check_domain_name, load_domain
from commands.toolstacks.base import LiveRules, NotReached, Target


class OfflineToolstack(LiveRules):
    """Today's behaviour: the domain is what its xl.cfg file says, and it is stopped."""

    name = "offline"

    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir

    def resolve(self, name: str) -> Target:
        check_domain_name(name)
        path = self.config_dir / f"{name}.cfg"
        if not os.path.lexists(path):
            raise NotReached(f"no config file {path}")
        return Target(load_domain(self.config_dir, name), self.name,
                      reason=f"stopped domain, config {path}")
