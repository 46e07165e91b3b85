"""The named dependencies every handler takes: settings, ledger, view, drivers, actor."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from commands.domains import Domain
from commands.drivers.qemu_img import QemuImg
from commands.errors import LedgerBlocked, UsageError
from commands.files import private_dir
from commands.settings import Settings
from ledger.actor import current_actor
from ledger.app import LedgerApp
from ledger.domain import DomainLedger
from ledger.errors import LedgerUnavailable
from projections.tree_view import TreeView


@dataclass
class Services:
    """What handlers use; ``sync`` brings the read model up to the log."""

    settings: Settings
    app: LedgerApp
    view: TreeView
    qemu_img: QemuImg = field(
        default_factory=lambda: QemuImg(os.environ.get("XLSNAP_QEMU_IMG") or "qemu-img"))
    actor: dict[str, Any] = field(default_factory=current_actor)

    def sync(self) -> None:
        self.view.catch_up()

    def close(self) -> None:
        self.view.close()
        self.app.close()

    def ledger_for(self, domain: Domain) -> DomainLedger:
        """The domain's ledger; a new one (registered on first save) if it has none."""
        ledger = self.app.get_domain(domain.key)
        if ledger is None:
            ledger = DomainLedger(domain_key=domain.key, domain_name=domain.name,
                                  domain_uuid=domain.uuid, actor=self.actor)
        return ledger


def open_services(settings: Settings, actor: dict[str, Any] | None = None) -> Services:
    """Open the ledger (creating the state folder) and its read model."""
    try:
        private_dir(settings.home)
        app = LedgerApp(settings.ledger)
        view = TreeView(app)
    except LedgerUnavailable as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot open ledger {settings.ledger}: {exc}") from None
    except Exception as exc:  # a file that is not a ledger database
        raise LedgerBlocked(f"cannot read ledger {settings.ledger}: {exc}") from None
    services = Services(settings, app, view)
    if actor is not None:
        services.actor = actor
    return services
