"""A QEMU command line, changed to start the same machine again (revert of a live domain)."""

from __future__ import annotations

from collections.abc import Sequence

from commands.errors import UsageError

_DROP_WITH_VALUE = ("-incoming", "-loadvm")
_DROP = ("-S", "-daemonize")


def split_options(text: str) -> list[str]:
    """``a=1,b=x,,y`` -> ``["a=1", "b=x,y"]`` (``,,`` is a literal comma).

    QEMU's ``-drive`` option is a comma-separated list of ``key=value`` items in which
    ``,,`` stands for a literal comma. Restarting keeps every option but points the named
    drives (by ``id=``) at other files, drops ``-incoming``, ``-S``, ``-loadvm`` and
    ``-daemonize``, and adds ``-daemonize`` plus ``-incoming defer`` (a memory image is
    loaded next) or ``-S`` (start paused).

        restart_argv(argv, {"drv0": ("/img/a.s1.qcow2", "qcow2")}, incoming=True)
    """
    items, current, i = [], [], 0
    while i < len(text):
        if text[i] == ",":
            if text[i + 1:i + 2] == ",":
                current.append(",")
                i += 2
                continue
            items.append("".join(current))
            current = []
        else:
            current.append(text[i])
        i += 1
    items.append("".join(current))
    return items


def join_options(items: Sequence[str]) -> str:
    return ",".join(item.replace(",", ",,") for item in items)


def _set(items: list[str], key: str, value: str) -> list[str]:
    out = [i for i in items if not i.startswith(f"{key}=")]
    return [f"{key}={value}", *out] if key == "file" else [*out, f"{key}={value}"]


def drive_ids(argv: Sequence[str]) -> dict[str, str]:
    """``-drive`` ids and their ``file=`` in a command line."""
    found: dict[str, str] = {}
    for option, value in zip(argv, argv[1:]):
        if _norm(option) == "-drive":
            items = dict(i.split("=", 1) for i in split_options(value) if "=" in i)
            if "id" in items:
                found[items["id"]] = items.get("file", "")
    return found


def restart_argv(argv: Sequence[str], files: dict[str, tuple[str, str]], *,
                 incoming: bool, paused: bool = False) -> list[str]:
    """``argv`` with the drives in ``files`` (id -> (file, format)) replaced (the -drive
    syntax: ``split_options``)."""
    if not argv:
        raise UsageError("the running QEMU's command line is not readable (it runs as "
                         "another user?): xlsnap cannot restart it")
    missing = set(files) - set(drive_ids(argv))
    if missing:
        raise UsageError(f"cannot restart QEMU: its command line has no -drive with id="
                         f"{', id='.join(sorted(missing))} (only -drive file=...,id=... drives "
                         "can be pointed at other files)")
    out: list[str] = []
    i = 0
    while i < len(argv):
        option = _norm(argv[i])
        if option in _DROP_WITH_VALUE:
            i += 2
            continue
        if option in _DROP:
            i += 1
            continue
        if option == "-drive" and i + 1 < len(argv):
            items = split_options(argv[i + 1])
            ident = dict(x.split("=", 1) for x in items if "=" in x).get("id")
            if ident in files:
                path, fmt = files[ident]
                items = _set(_set(items, "file", path), "format", fmt)
            out += [argv[i], join_options(items)]
            i += 2
            continue
        out.append(argv[i])
        i += 1
    out.append("-daemonize")
    if incoming:
        out += ["-incoming", "defer"]
    elif paused:
        out.append("-S")
    return out


def _norm(option: str) -> str:
    return option[1:] if option.startswith("--") else option
