"""The named dependencies every handler takes: settings, ledger, view, drivers, actor."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

from commands.engine.actions import Tools
from commands.config.domains import Domain, check_uuid_binding
from commands.drivers.qemu_img import QemuImg
from commands.drivers.qmp import Qmp, QmpChannel
from commands.drivers.libxl_lock import QmpSocketLock
from commands.drivers.xl import Xl, XlError
from commands.errors import LedgerBlocked, UsageError, XlsnapError
from commands.state.private_folders import check_private_dir, private_dir
from commands.state.ledger_file import check_is_ledger, check_not_missing, open_shared
from commands.engine.progress import default_watch
from commands.config.settings import Settings
from commands.toolstacks.base import Target
from commands.toolstacks.select import resolve
from ledger.actor import current_actor
from ledger.app import LazyApp, LedgerApp
from ledger.domain import DomainLedger
from ledger.errors import LedgerUnavailable, OperationInFlight
from ledger.storage.location import is_postgres
from projections.tree_view import TreeView

T = TypeVar("T")


def tool_timeout() -> float:
    """Seconds one qemu-img call may take: ``XLSNAP_TOOL_TIMEOUT``, default 120."""
    raw = os.environ.get("XLSNAP_TOOL_TIMEOUT", "")
    try:
        value = float(raw) if raw else 120.0
    except ValueError:
        raise UsageError(f"XLSNAP_TOOL_TIMEOUT must be a number of seconds, not {raw!r}") from None
    if value <= 0:
        raise UsageError("XLSNAP_TOOL_TIMEOUT must be positive")
    return value


class Services:
    """What handlers use. The ledger opens on first use, so input refused before
    that leaves no file behind; ``sync`` brings the read model up to the log."""

    def __init__(self, settings: Settings, actor: dict[str, Any] | None = None,
                 qemu_img: QemuImg | None = None, read_only: bool = False,
                 xl: Xl | None = None, qmp: Callable[[str], Qmp] | None = None) -> None:
        self.settings = settings
        #: A read-only command never creates the ledger, its folder or the home.
        self.read_only = read_only
        self.actor = actor if actor is not None else current_actor()
        self.qemu_img = qemu_img or QemuImg(os.environ.get("XLSNAP_QEMU_IMG") or "qemu-img",
                                            tool_timeout())
        self._app: LedgerApp | LazyApp | None = None
        self._view: TreeView | None = None
        self._tools: Tools | None = None
        self._xl, self._qmp = xl, qmp   # drivers given in place of the real ones (tests)
        self._channels: dict[str, QmpChannel] = {}

    @property
    def app(self) -> LedgerApp:
        if self._app is None:
            self._open()
        if isinstance(self._app, LazyApp):
            return self._app.get()
        assert self._app is not None
        return self._app

    @property
    def view(self) -> TreeView:
        if self._view is None:
            self._open()
        assert self._view is not None
        return self._view

    def _open(self) -> None:
        location = self.settings.ledger
        if is_postgres(location):
            self._app, self._view = open_shared(location, self.settings, self.read_only)
            return
        def opened(make: Callable[[], T]) -> T:
            try:
                return make()
            except XlsnapError:
                raise
            except LedgerUnavailable as exc:
                raise UsageError(str(exc)) from None
            except OSError as exc:
                raise UsageError(f"cannot open ledger {location}: {exc}") from None
            except Exception as exc:  # a file that is not a ledger database
                raise LedgerBlocked(f"cannot read ledger {location}: {exc}") from None

        def first_open() -> tuple[LedgerApp | LazyApp, TreeView]:
            nonlocal location
            fresh = not os.path.lexists(location)
            if fresh:
                check_not_missing(self.settings)
            else:
                check_is_ledger(location)
            self._check_folders()
            if fresh and self.read_only:  # nothing recorded yet: read an empty ledger
                location = ":memory:"
            if fresh:
                app: LedgerApp | LazyApp = LedgerApp(location)   # makes the tables
            else:
                # opened on first use: a read whose view is up to date never needs it
                path = location
                app = LazyApp(path, lambda: opened(lambda: LedgerApp(path)))
            view = TreeView(app)
            if fresh and not self.read_only:
                os.chmod(location, 0o600)
            return app, view

        self._app, self._view = opened(first_open)

    def _check_folders(self) -> None:
        """The home (created if missing) and the ledger's folder (see ``private_folders``)."""
        home = self.settings.home
        folder = Path(os.path.abspath(self.settings.ledger)).parent
        if not self.read_only:
            private_dir(home, "home folder")
        elif os.path.lexists(home):
            check_private_dir(home, "home folder")
        if folder != home and (not self.read_only or os.path.lexists(folder)):
            check_private_dir(folder, "ledger folder")

    @property
    def tools(self) -> Tools:
        """The drivers that actions use (one set per command: they keep its pause clock)."""
        if self._tools is None:
            timeout = tool_timeout()
            self._tools = Tools(
                qemu_img=self.qemu_img,
                xl=self._xl or Xl(self.settings.xl, timeout, str(self.settings.xen_qmp_dir)),
                qmp=self._qmp or (lambda path: Qmp(path, command_timeout=timeout,
                                                   channel=self.channel(path))),
                watch=default_watch(),
            )
        return self._tools

    def channel(self, socket_path: str) -> QmpChannel:
        """The one QMP channel of this command to ``socket_path`` (a toolstack may hold it)."""
        found = self._channels.get(socket_path)
        if found is None:
            found = self._channels[socket_path] = QmpChannel(
                socket_path, guard=self._libxl_lock(socket_path))
        return found

    def _libxl_lock(self, socket_path: str) -> Callable[[], AbstractContextManager[None]] | None:
        """libxl's lock for a Xen device model's socket (``qmp-libxl-<domid>``), else None."""
        folder, _, base = socket_path.rpartition("/")
        match = re.fullmatch(r"qmp-libxl-(\d+)", base)
        if match is None or os.path.realpath(folder) != os.path.realpath(
                self.settings.xen_qmp_dir):
            return None
        domid = int(match[1])

        def uuid_of() -> str | None:
            try:
                found = self.tools.xl.list_long(domid)
            except XlError:
                return None
            return found[0].uuid if len(found) == 1 else None

        return QmpSocketLock(domid, uuid_of).held

    def say(self, message: str) -> None:
        """A ``--verbose`` note on stderr."""
        if self.settings.verbose:
            print(f"xlsnap: {message}", file=sys.stderr)

    def resolve(self, name: str) -> Target:
        """Domain ``name`` through ``--toolstack`` (auto: the first that reaches it)."""
        return resolve(self.settings, name, self.tools.xl, self.tools.qmp, self.say)

    def sync(self) -> None:
        self.view.catch_up()

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        if self._view is not None:
            self._view.close()
        if self._app is not None:
            self._app.close()

    def ledger_for(self, domain: Domain) -> DomainLedger:
        """The domain's ledger; a new one (registered on first save) if it has none."""
        ledger = self.app.get_domain(domain.key)
        check_uuid_binding(domain, ledger.domain_name if ledger is not None else None)
        if ledger is None:
            ledger = DomainLedger(domain_key=domain.key, domain_name=domain.name,
                                  domain_uuid=domain.uuid, actor=self.actor)
        return ledger

    def idle_ledger_for(self, domain: Domain) -> DomainLedger:
        """``ledger_for``, refused while an operation is in flight. Read twice before a
        refusal: the owner may have finished between the read and the check of its process,
        which would otherwise be reported as gone (and ``recover`` asked for)."""
        try:
            ledger = self.ledger_for(domain)
            ledger.check_idle()
        except OperationInFlight:
            ledger = self.ledger_for(domain)
            ledger.check_idle()
        return ledger


def open_services(settings: Settings, actor: dict[str, Any] | None = None,
                  read_only: bool = False) -> Services:
    """Services for ``settings``; the ledger itself opens when first used."""
    return Services(settings, actor, read_only=read_only)
