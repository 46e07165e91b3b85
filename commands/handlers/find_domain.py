"""Find a domain for queries: in the read model by name, else by its config file."""

from __future__ import annotations

import os

from commands.config.domains import check_domain_name, check_uuid_binding, load_domain
from commands.errors import UsageError
from commands.bootstrap import Services
from ledger.domain import domain_ledger_id


def domain_id_for(svc: Services, name: str) -> str | None:
    """The ledger id of domain ``name``; ``None`` if it is known but has no ledger yet."""
    check_domain_name(name)
    rows = svc.view.db.execute(
        "SELECT domain_id FROM view_domains WHERE name=?", (name,)).fetchall()
    if len(rows) == 1:
        return str(rows[0][0])
    config = svc.settings.config_dir / f"{name}.cfg"
    if not rows and not os.path.lexists(config):
        raise UsageError(f"unknown domain {name!r}: not in the ledger and no config file {config}")
    domain = load_domain(svc.settings.config_dir, name)
    domain_id = str(domain_ledger_id(domain.key))
    row = svc.view.domain(domain_id)
    check_uuid_binding(domain, row["name"] if row is not None else None)
    return domain_id if row is not None else None


def recorded_domain_id(svc: Services, name: str) -> str:
    """The ledger id of domain ``name``, which must have a ledger (queries of its past)."""
    domain_id = domain_id_for(svc, name)
    if domain_id is None:
        raise UsageError(f"domain {name!r} has no ledger yet")
    return domain_id
