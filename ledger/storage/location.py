"""A ledger location: a SQLite file path or a ``postgresql://`` URL, and how it is shown.

A URL's password (and any other secret parameter) never leaves this module in text
meant for people: ``shown`` is the URL rebuilt without it. libpq's own rules supply
a password the URL omits (``PGPASSWORD``, ``~/.pgpass``).
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from urllib.parse import quote

from ledger.errors import LedgerUnavailable

SCHEMES = ("postgresql://", "postgres://")
_SECRET_KEYS = ("password", "sslpassword", "passfile")


def is_postgres(location: str) -> bool:
    return location.startswith(SCHEMES)


@dataclass(frozen=True)
class PgLocation:
    """A parsed PostgreSQL URL: libpq parameters, with the password kept apart."""

    params: dict[str, str] = field(repr=False)

    @property
    def dbname(self) -> str:
        return self.params.get("dbname") or self.user

    @property
    def user(self) -> str:
        return self.params.get("user") or getpass.getuser()

    @property
    def host(self) -> str:
        return self.params.get("host") or "/run/postgresql"

    @property
    def port(self) -> str:
        return self.params.get("port") or "5432"

    @property
    def shown(self) -> str:
        """The URL without its password: safe to print, log and record."""
        host = self.host
        if host.startswith("/"):
            return (f"postgresql://{quote(self.user)}@/{quote(self.dbname)}"
                    f"?host={quote(host)}" + (f"&port={self.port}" if self.port != "5432" else ""))
        return f"postgresql://{quote(self.user)}@{host}:{self.port}/{quote(self.dbname)}"

    def connect_kwargs(self, timeout: int) -> dict[str, str | int]:
        """Keyword arguments for ``psycopg.connect`` (libpq reads the password rules)."""
        kwargs: dict[str, str | int] = {k: v for k, v in self.params.items() if v}
        kwargs.update(dbname=self.dbname, user=self.user, host=self.host, port=self.port,
                      connect_timeout=timeout)
        return kwargs

    def library_env(self, lock_timeout: int) -> dict[str, str]:
        """The eventsourcing library's PostgreSQL settings. The library always passes a
        password, and libpq reads ``PGPASSWORD`` only when none is passed (the password
        file still when it is empty): so the URL's password, else ``PGPASSWORD``'s."""
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": self.dbname, "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": self.port, "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": (self.params.get("password")
                                  or os.environ.get("PGPASSWORD", "")),
            "POSTGRES_CONNECT_TIMEOUT": connect_timeout(),
            "POSTGRES_LOCK_TIMEOUT": str(lock_timeout),
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "0",
            "POSTGRES_POOL_SIZE": "2",
        }


def connect_timeout() -> str:
    """Seconds the library waits for a connection, per attempt (it makes ten before it
    gives up on a lost server): ``XLSNAP_PG_CONNECT_TIMEOUT``, default 10."""
    raw = os.environ.get("XLSNAP_PG_CONNECT_TIMEOUT", "10")
    if not raw.isdigit() or int(raw) < 1:
        raise LedgerUnavailable(f"XLSNAP_PG_CONNECT_TIMEOUT must be a whole number of "
                                f"seconds, not {raw!r}")
    return raw


def parse_postgres(location: str) -> PgLocation:
    """The parameters of a ``postgresql://`` URL; ``LedgerUnavailable`` if it is malformed."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = {k: str(v) for k, v in conninfo_to_dict(location).items() if v is not None}
    except Exception as exc:  # noqa: BLE001 - libpq's parser says what is wrong
        reason = str(exc).replace(location, "the URL")
        raise LedgerUnavailable(f"malformed PostgreSQL URL: {scrub(reason)}") from None
    return PgLocation(params)


def shown(location: str) -> str:
    """A location as it may be printed: a URL loses its password."""
    if not is_postgres(location):
        return location
    try:
        return parse_postgres(location).shown
    except LedgerUnavailable:
        return "a malformed PostgreSQL URL"


def scrub(text: str) -> str:
    """``text`` with anything that looks like ``password=...`` or ``user:pw@`` removed."""
    import re

    text = re.sub(r"(://[^:/@\s]*):[^@\s]*@", r"\1:***@", text)
    return re.sub(r"(?i)\b(" + "|".join(_SECRET_KEYS) + r")=\S+", r"\1=***", text)
