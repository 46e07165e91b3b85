"""Reading an input file safely: a regular file only, never more than a size limit.

Config files and snapshot configs are opened with ``O_NONBLOCK`` (a FIFO does not
block the open) and checked with ``fstat`` before any byte is read: a FIFO, a device
such as ``/dev/zero`` or a folder is refused, and so is a file over the limit
(``XLSNAP_MAX_CONFIG_BYTES``, default 1 MiB). Every error is a one-line ConfigError.
"""

from __future__ import annotations

import errno
import os
import stat

from commands.errors import ConfigError, UsageError

LIMIT_ENV = "XLSNAP_MAX_CONFIG_BYTES"
DEFAULT_LIMIT = 1 << 20
_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def size_limit() -> int:
    """The largest input file read, in bytes: ``XLSNAP_MAX_CONFIG_BYTES`` or 1 MiB."""
    raw = os.environ.get(LIMIT_ENV, "")
    if not raw:
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit() or int(raw) <= 0:
        raise UsageError(f"{LIMIT_ENV} must be a positive number of bytes, not {raw!r}")
    return int(raw)


def _opener(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NONBLOCK | os.O_NOCTTY)


def read_small_file(path: str | os.PathLike[str], what: str = "config file") -> bytes:
    """The bytes of the regular file at ``path`` (links followed), at most ``size_limit()``."""
    name = os.fsdecode(path)
    limit = size_limit()
    try:
        with open(path, "rb", buffering=0, opener=_opener) as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if stat.S_ISDIR(mode):
                raise ConfigError(f"cannot read {what} {name}: Is a directory")
            if not stat.S_ISREG(mode):
                kind = next((k for test, k in _KINDS if test(mode)), "not a regular file")
                raise ConfigError(f"cannot read {what} {name}: it is {kind}, not a regular file")
            data = handle.read(limit + 1)
    except FileNotFoundError:
        if os.path.islink(name):
            raise ConfigError(f"cannot read {what} {name}: dangling symbolic link") from None
        raise ConfigError(f"{what} not found: {name}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"cannot read {what} {name}: symlink loop") from None
        raise ConfigError(f"cannot read {what} {name}: {exc.strerror or exc}") from None
    except ValueError as exc:  # e.g. an embedded NUL byte in the path
        raise ConfigError(f"cannot read {what} {name!r}: {exc}") from None
    if len(data) > limit:
        raise ConfigError(f"cannot read {what} {name}: larger than {limit} bytes "
                          f"(the limit; {LIMIT_ENV} changes it)")
    return data
