"""``--toolstack auto|xen|qemu|offline``: which adapter resolves a domain.

``auto`` asks, in order, ``qemu`` (when a QMP folder is given), ``xen`` (when an ``xl``
program is installed) and ``offline``, and takes the first that reaches the domain; each
one that does not says why, so a domain found nowhere is refused in one line that names
every reason (e.g. "xl is installed but no Xen hypervisor is running").
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

from commands.drivers.qmp import Qmp
from commands.drivers.xl import Xl
from commands.errors import UsageError
from commands.config.settings import TOOLSTACKS, Settings
from commands.toolstacks.base import LiveRules, NotReached, Target, Toolstack
from commands.toolstacks.offline import OfflineToolstack
from commands.toolstacks.qemu import QemuToolstack
from commands.toolstacks.xen import XenToolstack


#: Each toolstack's adapter class, by the name a ``Target`` and a ledger record carry.
ADAPTERS: dict[str, type[LiveRules]] = {
    "xen": XenToolstack, "qemu": QemuToolstack, "offline": OfflineToolstack}


def rules_of(toolstack: str | None) -> type[LiveRules]:
    """The rules of a named toolstack (a record without one was taken offline)."""
    return ADAPTERS.get(toolstack or "offline", OfflineToolstack)


def adapter(key: str, settings: Settings, xl: Xl, qmp: Callable[[str], Qmp]) -> Toolstack:
    """The adapter ``key`` (qemu, xen or offline), built only when it is asked."""
    if key == "qemu":
        return QemuToolstack(settings.qmp_dir, settings.config_dir, qmp)
    if key == "xen":
        return XenToolstack(xl, settings.config_dir, qmp)
    return OfflineToolstack(settings.config_dir)


def resolve(settings: Settings, name: str, xl: Xl, qmp: Callable[[str], Qmp],
            say: Callable[[str], None] = lambda _m: None) -> Target:
    """The domain ``name`` through the chosen toolstack; ``UsageError`` when none reaches it."""
    choice = settings.toolstack
    if choice not in TOOLSTACKS:
        raise UsageError(f"unknown toolstack {choice!r} (choose one of {', '.join(TOOLSTACKS)})")
    if choice != "auto":
        try:
            target = adapter(choice, settings, xl, qmp).resolve(name)
        except NotReached as exc:
            raise UsageError(f"unknown domain {name!r} for toolstack {choice}: {exc}") from None
        say(f"toolstack {choice} (chosen): {target.reason}")
        return target
    order = ["offline"]
    if shutil.which(xl.binary):
        order.insert(0, "xen")
    if settings.qmp_dir is not None:
        order.insert(0, "qemu")
    reasons: list[str] = []
    for key in order:
        try:
            target = adapter(key, settings, xl, qmp).resolve(name)
        except NotReached as exc:
            reasons.append(f"{key}: {exc}")
            continue
        skipped = f" (not {'; not '.join(reasons)})" if reasons else ""
        say(f"toolstack {key} (auto): {target.reason}{skipped}")
        return target
    offline = reasons.pop()  # "offline: no config file ..." leads: it is the usual mistake
    others = f" ({'; '.join(reasons)})" if reasons else ""
    raise UsageError(f"unknown domain {name!r}: {offline.removeprefix('offline: ')}{others}")
