"""The connection to one QMP socket and the event loop it lives on (``QmpChannel``)."""

from __future__ import annotations

import contextlib
import functools
import signal
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from commands.drivers.qmp_errors import QmpBusy, QmpError, QmpTimeout, QmpUnavailable

if TYPE_CHECKING:
    import asyncio

    from qemu.qmp import QMPClient

T = TypeVar("T")

DEFAULT_CONNECT_TIMEOUT = 5.0

#: Signals held while QEMU is being talked to: an interrupt waits for the conversation's
#: end (QEMU goes on with a command whether or not anyone waits for its answer).
HELD = frozenset({signal.SIGINT, signal.SIGTERM})


class QmpChannel:
    """The connection to one QMP socket and the event loop it lives on.

    Unheld, each ``run`` connects, converses and disconnects. Held (``hold()``), the
    connection stays open after a call that went well and serves the next one; it is
    closed by ``close()``, after ``quit``, and after any call that timed out, lost the
    connection or was interrupted (the next call then connects afresh).

    Unheld, a channel connects for each call and disconnects after it. Held, one connection
    serves every call of a command: a connect and QMP's capabilities handshake saved per
    call. Only a socket nothing else needs meanwhile may be held: libxl talks to
    ``qmp-libxl-<domid>`` itself during ``xl save`` and friends, so Xen's never are.
    asyncio and qemu.qmp load on first use.
    """

    def __init__(self, socket_path: str, *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 name: str = "xlsnap",
                 guard: Callable[[], AbstractContextManager[None]] | None = None) -> None:
        self.socket_path = str(socket_path)
        #: Held around each conversation of an unheld channel (libxl's QMP socket lock).
        self.guard = guard
        self.connect_timeout = connect_timeout
        self.name = name
        self.held = False
        self.connects = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: QMPClient | None = None
        self._ending = False

    def hold(self) -> None:
        """Keep the connection open between calls, until ``close()`` (at exit at the latest:
        a loop left to the garbage collector would print its tasks' errors)."""
        if not self.held:
            import atexit

            atexit.register(self.close)
        self.held = True

    def ending(self) -> None:
        """The command being sent ends the connection (``quit``): drop it afterwards."""
        self._ending = True

    def run(self, steps: Callable[[QMPClient], Awaitable[T]], total: float) -> T:
        """Run ``steps`` on a connected client within ``total`` seconds.

        ``guard`` (libxl's QMP lock), if any, is held from before the connect until after
        the disconnect; waiting for it can be interrupted. SIGINT and SIGTERM are held
        while QEMU is talked to: one that arrives is delivered (as ``KeyboardInterrupt``)
        when QEMU has answered or the time is up, never in the middle of a command whose
        outcome would then be unknown.
        """
        with self.guard() if self.guard is not None else contextlib.nullcontext():
            old = signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
            try:
                return self._run(steps, total)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def _run(self, steps: Callable[[QMPClient], Awaitable[T]], total: float) -> T:
        import asyncio

        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        loop = self._loop
        task = loop.create_task(asyncio.wait_for(self._converse(steps), total))
        keep = False
        try:
            result = loop.run_until_complete(task)
            keep = True
            return result
        except TimeoutError:
            raise QmpTimeout(f"QMP conversation on {self.socket_path} took over {total:g}s",
                             "Timeout") from None
        except QmpUnavailable:
            raise
        except QmpError:
            keep = True  # QEMU answered (it refused): the connection is sound
            raise
        finally:
            if not task.done():  # interrupted from outside (a signal): stop the steps first
                task.cancel()
                with contextlib.suppress(BaseException):
                    loop.run_until_complete(task)
            if not (keep and self.held) or self._ending:
                self.close()

    def close(self) -> None:
        """Disconnect (if connected) and close the event loop."""
        loop, client = self._loop, self._client
        self._loop = self._client = None
        self._ending = False
        if loop is None:
            return
        try:
            if client is not None:
                loop.run_until_complete(self._disconnect(client))
        finally:
            _close_loop(loop)

    async def _converse(self, steps: Callable[[QMPClient], Awaitable[T]]) -> T:
        from qemu.qmp.protocol import Runstate

        client = self._client
        if client is None or client.runstate != Runstate.RUNNING:
            if client is not None:
                await self._disconnect(client)
            self._client = None
            client = await self._connect()
            self._client = client
        return await steps(client)

    async def _connect(self) -> QMPClient:
        import asyncio

        from qemu.qmp import ConnectError

        client = _client_class()(self.name)
        try:
            await asyncio.wait_for(client.connect(self.socket_path), self.connect_timeout)
        except TimeoutError:
            raise QmpBusy(f"no QMP greeting on {self.socket_path} within "
                          f"{self.connect_timeout:g}s (busy with another client?)",
                          "Timeout") from None
        except ConnectError as exc:
            raise QmpUnavailable(f"cannot connect to QMP socket {self.socket_path}: "
                                 f"{exc.exc}", "ConnectError") from None
        self.connects += 1
        return client

    async def _disconnect(self, client: QMPClient) -> None:
        import asyncio

        from qemu.qmp import QMPError

        try:
            await asyncio.wait_for(client.disconnect(), self.connect_timeout)
        except (QMPError, OSError, EOFError, TimeoutError):
            pass  # the server hung up first (e.g. after ``quit``): nothing to undo


@functools.cache
def _client_class() -> type[QMPClient]:
    """``QMPClient`` whose message hooks format a message only for debug logging.

    The library's hooks (``_cb_inbound``/``_cb_outbound``, meant to be overridden) log
    every message at debug level, pretty-printing it first even when nothing logs it:
    milliseconds for each ``query-block`` of disks with many snapshots.
    """
    import logging

    from qemu.qmp import QMPClient

    class QuietClient(QMPClient):
        def _cb_outbound(self, msg: Any) -> Any:
            if self.logger.isEnabledFor(logging.DEBUG):
                self.logger.debug("--> %s", msg)
            return msg

        def _cb_inbound(self, msg: Any) -> Any:
            if self.logger.isEnabledFor(logging.DEBUG):
                self.logger.debug("<-- %s", msg)
            return msg

    return QuietClient


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left on ``loop`` and close it, as ``asyncio.run`` does at its end."""
    import asyncio

    try:
        left = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in left:
            t.cancel()
        if left:
            loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
