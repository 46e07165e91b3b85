"""The snapshot a command names: ``-n NAME`` (the seed's form) or a positional NAME (virsh's)."""

from __future__ import annotations

from typing import Annotated

import typer

from commands.errors import UsageError

#: The snapshot a query or an edit names: NAME after the domain, or ``-n NAME``.
SnapshotArgument = Annotated[str | None, typer.Argument(
    metavar="[NAME]", help="The snapshot (or -n NAME).")]
SnapshotOption = Annotated[str | None, typer.Option("-n", "--name", help="The snapshot.")]


def one_name(positional: str | None, option: str | None, required: bool = True) -> str | None:
    """The name given either way; both must agree, and one is needed when ``required``."""
    if positional is not None and option is not None and positional != option:
        raise UsageError(f"two snapshot names given: {positional!r} and -n {option!r}; "
                         "give one")
    name = option if option is not None else positional
    if name is None and required:
        raise UsageError("no snapshot name given: -n NAME, or NAME after the domain")
    return name
