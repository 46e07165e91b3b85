"""``xlsnap prove``: an inclusion proof of a snapshot's creation, to check offline."""

# No 'from __future__ import annotations': typer would compile every annotation string
# of every command at each start-up.

import json
from itertools import islice
from typing import Annotated, Any

import typer

from commands.cli.main import services
from commands.cli.snapshot_args import one_name
from commands.errors import UsageError, VerificationFailed
from commands.handlers.find_domain import recorded_domain_id
from commands.bootstrap import Services
from ledger.entries import MalformedRow, connect_readonly, iter_rows, row_leaf
from projections.log_reader import decode, domain_rows


def prove(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="Domain name.")],
    snapshot: Annotated[str | None, typer.Argument(
        metavar="[NAME]", help="Snapshot name (or -n NAME).")] = None,
    name_option: Annotated[str | None, typer.Option(
        "-n", "--name", help="Snapshot name.")] = None,
    out: Annotated[str, typer.Option("--out", "-o", help="File to write, or - for stdout.")]
    = "-",
    since_head: Annotated[str | None, typer.Option(
        "--since-head", help="Also prove the proof's head extends this older head file.")]
    = None,
) -> None:
    """Print an inclusion proof of the event that created snapshot NAME of DOMAIN.

    The proof holds the event as stored, the RFC 9162 audit path and the latest
    signed tree head; 'xlsnap verify-proof' (or any RFC 9162 implementation) checks
    it without the database. The event must be sealed first ('xlsnap seal').

    \b
    Examples:
      xlsnap prove web before-upgrade > before-upgrade.proof.json
      xlsnap prove web before-upgrade --since-head /mnt/offsite/head-0131.json
    """
    from commands.handlers.integrity_keys import read_head, write_output

    name = one_name(snapshot, name_option)
    older = read_head(since_head) if since_head else None
    svc = services(ctx, read_only=True)
    svc.sync()
    domain_id = recorded_domain_id(svc, domain)
    position = _creation_position(svc, domain_id, name)
    if position is None:
        raise UsageError(f"domain {domain!r} never had a snapshot named {name!r}")
    db = connect_readonly(svc.settings.ledger)
    try:
        db.execute("BEGIN")
        proof = _proof(db, position, older)
    finally:
        db.close()
    write_output(out, json.dumps(proof, indent=2) + "\n")


def _creation_position(svc: Services, domain_id: str, name: str) -> int | None:
    """Where snapshot ``name`` was created: the live one, else the last one deleted."""
    row = svc.view.db.execute("SELECT position FROM view_snapshots WHERE domain_id=? AND "
                              "name=?", (domain_id, name)).fetchone()
    if row:
        return int(row[0])
    found = None
    for raw in domain_rows(svc.view.db, domain_id):
        position, event = decode(svc.app, raw)
        if type(event).__name__ == "SnapshotTaken" and getattr(event, "name", None) == name:
            found = position
    return found


def _proof(db: Any, position: int, older: Any) -> dict[str, Any]:
    from ledger.proofs import ProofError, make_inclusion_proof
    from ledger.tree_heads import HeadFormatError, cached_leaves, last_head, leaf_index

    try:
        found = last_head(db)
    except HeadFormatError as exc:
        raise VerificationFailed(f"recorded heads are malformed: {exc}") from None
    if found is None or leaf_index(db, position) >= found[0].tree_size:
        raise UsageError(f"the event at position {position} is not sealed yet: run "
                         "'xlsnap seal' first")
    head = found[0]
    try:
        leaves = cached_leaves(db, head.tree_size)
    except HeadFormatError:
        leaves = _leaves_from_log(db, head.tree_size)
    try:
        return make_inclusion_proof(db, position, head, leaves, older)
    except ProofError as exc:
        raise VerificationFailed(str(exc)) from None


def _leaves_from_log(db: Any, size: int) -> list[bytes]:
    try:
        return [row_leaf(*raw[1:]) for raw in islice(iter_rows(db), size)]
    except MalformedRow as exc:
        raise VerificationFailed(f"the log holds a malformed event: {exc}") from None


def register(app: typer.Typer) -> None:
    app.command("prove")(prove)
