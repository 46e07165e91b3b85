"""Where xlsnap keeps its state and finds domain configs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT_HOME = Path("/var/lib/xen/snapshots")
DEFAULT_CONFIG_DIR = Path("/etc/xen")


def default_home() -> Path:
    """``/var/lib/xen/snapshots`` for root, the XDG state folder for anyone else."""
    if os.geteuid() == 0:
        return ROOT_HOME
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "xlsnap"


@dataclass(frozen=True)
class Settings:
    """Resolved locations: the state folder, the ledger and the domain configs."""

    home: Path
    ledger: str
    config_dir: Path

    @classmethod
    def resolve(
        cls, home: str | None = None, ledger: str | None = None, config_dir: str | None = None
    ) -> Settings:
        """Options first, then ``XLSNAP_HOME`` / ``XLSNAP_LEDGER`` / ``XLSNAP_CONFIG_DIR``."""
        home_path = Path(home or os.environ.get("XLSNAP_HOME") or default_home()).absolute()
        ledger_loc = ledger or os.environ.get("XLSNAP_LEDGER") or str(home_path / "ledger.sqlite")
        cfg_dir = Path(config_dir or os.environ.get("XLSNAP_CONFIG_DIR") or DEFAULT_CONFIG_DIR)
        return cls(home_path, ledger_loc, cfg_dir.absolute())

    def domain_dir(self, domain_uuid: str) -> Path:
        """The folder holding one domain's metadata files and memory images."""
        return self.home / domain_uuid
