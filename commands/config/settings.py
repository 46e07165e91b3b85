"""Where xlsnap keeps its state and finds domain configs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

ROOT_HOME = Path("/var/lib/xen/snapshots")
DEFAULT_CONFIG_DIR = Path("/etc/xen")
#: libxl puts each device model's QMP socket here as ``qmp-libxl-<domid>``.
XEN_QMP_DIR = Path("/var/run/xen")
#: ``--toolstack`` choices: ``auto`` picks the first that reaches the domain.
TOOLSTACKS = ("auto", "xen", "qemu", "offline")


def default_home() -> Path:
    """``/var/lib/xen/snapshots`` for root, the XDG state folder for anyone else."""
    if os.geteuid() == 0:
        return ROOT_HOME
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "xlsnap"


class Settings(NamedTuple):
    """Resolved locations and choices: the state folder, the ledger, the domain
    configs, which toolstack reaches domains, and where QMP sockets are."""

    home: Path
    ledger: str
    config_dir: Path
    toolstack: str = "auto"
    qmp_dir: Path | None = None
    xen_qmp_dir: Path = XEN_QMP_DIR
    xl: str = "xl"
    verbose: bool = False
    #: ``--new-ledger``: start an empty ledger although the home holds domain folders.
    new_ledger: bool = False

    @classmethod
    def resolve(
        cls, home: str | None = None, ledger: str | None = None, config_dir: str | None = None,
        toolstack: str | None = None, qmp_dir: str | None = None, verbose: bool = False,
        new_ledger: bool = False,
    ) -> Settings:
        """Options first, then ``XLSNAP_HOME`` / ``XLSNAP_LEDGER`` / ``XLSNAP_CONFIG_DIR`` /
        ``XLSNAP_TOOLSTACK`` / ``XLSNAP_QMP_DIR``; ``XLSNAP_XL`` names the xl program and
        ``XLSNAP_XEN_QMP_DIR`` libxl's socket folder (default /var/run/xen)."""
        home_path = Path(home or os.environ.get("XLSNAP_HOME") or default_home()).absolute()
        ledger_loc = ledger or os.environ.get("XLSNAP_LEDGER") or str(home_path / "ledger.sqlite")
        cfg_dir = Path(config_dir or os.environ.get("XLSNAP_CONFIG_DIR") or DEFAULT_CONFIG_DIR)
        stack = toolstack or os.environ.get("XLSNAP_TOOLSTACK") or "auto"
        qmp = qmp_dir or os.environ.get("XLSNAP_QMP_DIR") or None
        xen_qmp = os.environ.get("XLSNAP_XEN_QMP_DIR") or str(XEN_QMP_DIR)
        return cls(home_path, ledger_loc, cfg_dir.absolute(), stack,
                   Path(qmp).absolute() if qmp else None, Path(xen_qmp).absolute(),
                   os.environ.get("XLSNAP_XL") or "xl", verbose, new_ledger)

    @property
    def seal_key(self) -> Path:
        """The Ed25519 key that signs tree heads (created by the first ``xlsnap seal``)."""
        return self.home / "seal.key"

    def domain_dir(self, domain_uuid: str) -> Path:
        """The folder holding one domain's metadata files and memory images."""
        return self.home / domain_uuid

    def memory_image(self, domain_uuid: str, name: str) -> Path:
        """Where the memory image of snapshot ``name`` lives: ``<home>/<uuid>/<name>.save``."""
        return self.domain_dir(domain_uuid) / f"{name}.save"
