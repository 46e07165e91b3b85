"""Rules for snapshot names: they become qcow2 tags and file names, so they are strict."""

from __future__ import annotations

import re

from ledger.errors import InvalidRequest

MAX_NAME_LENGTH = 64
_ALLOWED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+:@-]*")
#: The kinds of operation the ledger records (``OperationStarted.kind``).
OPERATION_KINDS = ("create", "revert", "delete", "adopt", "mark-current", "hold", "release",
                   "prune", "edit")
#: Longest hold tag (a ZFS user hold tag is at most 255 bytes; ours are shown in lists).
MAX_HOLD_TAG_LENGTH = 64


def check_hold_tag(tag: str) -> str:
    """Return ``tag`` if it is a valid hold tag: printable, not empty, not too long."""
    if tag.strip() == "":
        raise InvalidRequest("hold tag is empty")
    if len(tag) > MAX_HOLD_TAG_LENGTH:
        raise InvalidRequest(f"hold tag is too long ({len(tag)} characters, at most "
                             f"{MAX_HOLD_TAG_LENGTH})")
    if not tag.isprintable():
        raise InvalidRequest(f"hold tag {tag!r} contains control characters")
    return tag
#: Prefix of the temporary qcow2 tags xlsnap makes during a revert; users may not take it.
RESERVED_PREFIX = "xlsnap-"


def check_snapshot_name(name: str) -> str:
    """Return ``name`` if it is a valid snapshot name, else raise ``InvalidRequest``.

    >>> check_snapshot_name("before-upgrade")
    'before-upgrade'
    """
    if name == "":
        raise InvalidRequest("snapshot name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidRequest(
            f"snapshot name is too long ({len(name)} characters, at most {MAX_NAME_LENGTH})"
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidRequest(f"snapshot name {name!r} contains control characters")
    if "/" in name or "\\" in name:
        raise InvalidRequest(f"snapshot name {name!r} contains a path separator")
    if ".." in name:
        raise InvalidRequest(f"snapshot name {name!r} contains '..'")
    if name.startswith(RESERVED_PREFIX):
        raise InvalidRequest(f"snapshot name {name!r} uses the reserved prefix {RESERVED_PREFIX!r}")
    if not _ALLOWED.fullmatch(name):
        raise InvalidRequest(
            f"snapshot name {name!r} has characters other than letters, digits and ._+:@- "
            "(or does not start with a letter or digit)"
        )
    return name
