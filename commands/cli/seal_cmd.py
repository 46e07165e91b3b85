"""``xlsnap seal``: record a signed tree head over the whole log, to ship off the host."""

# No 'from __future__ import annotations': typer would compile every annotation string
# of every command at each start-up.

import os
from pathlib import Path
from typing import Annotated

import typer

from commands.cli.main import services
from commands.errors import UsageError, VerificationFailed


def seal(
    ctx: typer.Context,
    key: Annotated[str | None, typer.Option(
        "--key", help="Ed25519 key file [default: HOME/seal.key, created on first use].")]
    = None,
    out: Annotated[str | None, typer.Option(
        "--out", "-o", help="Also write the signed head (JSON) to this file, or - for "
        "stdout.")] = None,
) -> None:
    """Extend the Merkle tree over the events recorded since the last seal and record a
    signed tree head (size, root, time) in the ledger.

    Ship the head off this host (--out): 'xlsnap verify --head FILE' later proves the
    log still holds everything it held then, unaltered. The first seal creates the
    key (mode 0600) and its public key beside it (.pub); an existing key is never
    replaced, and a key that is not the one that signed the earlier heads is refused.

    \b
    Examples:
      xlsnap seal
      xlsnap seal --out - | ssh loghost 'cat >> xlsnap-heads.jsonl'
    """
    from commands.handlers.integrity_keys import public_key_path, seal_key, write_output
    from ledger.seal import SealRefused, seal_ledger
    from ledger.tree_heads import dumps_head

    svc = services(ctx)
    if svc.app.max_position() == 0:
        raise UsageError("the ledger is empty: there is nothing to seal")
    key_path = Path(key).absolute() if key else svc.settings.seal_key
    signer = _last_signer(svc.app.location)
    if signer is not None and not key_path.exists():
        raise VerificationFailed(f"no signing key at {key_path}, but the ledger's heads are signed "
                            f"by key {signer[:16]}: restore that key (a new one would not be "
                            "trusted)")
    private_key, created = seal_key(key_path)
    try:
        head, new = seal_ledger(svc.app.location, private_key)
    except SealRefused as exc:
        raise VerificationFailed(str(exc)) from None
    if created:
        typer.echo(f"Created signing key {key_path} (mode 0600) and its public key "
                   f"{public_key_path(key_path)}: keep a copy of the public key off this host",
                   err=True)
    if out is not None:
        write_output(out, dumps_head(head))
    summary = (f"Sealed {head.tree_size} events ({new} new) as {head.label()}: root "
               f"{head.root_hash.hex()}, key {head.key_id[:16]}")
    typer.echo(summary, err=out == "-")
    if out not in (None, "-"):
        typer.echo(f"Head written to {os.path.abspath(out)}", err=False)


def _last_signer(location: str) -> str | None:
    from ledger.entries import connect_readonly
    from ledger.tree_heads import HeadFormatError, last_head

    db = connect_readonly(location)
    try:
        found = last_head(db)
    except HeadFormatError:
        return None  # seal_ledger reports it
    finally:
        db.close()
    return found[0].key_id if found else None


def register(app: typer.Typer) -> None:
    app.command("seal")(seal)
