"""``xlsnap verify-proof``: check an inclusion proof offline, without any database."""

# No 'from __future__ import annotations': typer would compile every annotation string
# of every command at each start-up.

import json
from typing import Annotated, Any

import typer

from commands.errors import VerificationFailed
from commands.cli.timespec import show_time


def verify_proof(
    proof: Annotated[str, typer.Argument(help="The proof file ('xlsnap prove'), or -.")],
    pubkey: Annotated[str | None, typer.Option(
        "--pubkey", help="The public key the head must be signed with (PEM or hex).")]
    = None,
    head: Annotated[str | None, typer.Option(
        "--head", help="An older head you trust; the proof's head must extend it.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
) -> None:
    """Check that the event in PROOF is in the signed tree head it carries: recompute
    its leaf hash from the entry bytes, walk the RFC 9162 audit path to the head's
    root and check the head's Ed25519 signature. Exit code 3 when it does not hold.

    \b
    Examples:
      xlsnap verify-proof before-upgrade.proof.json --pubkey seal.pub
      xlsnap verify-proof p.json --head /mnt/offsite/head-0131.json
    """
    from commands.handlers.integrity_keys import read_head, read_json, read_public_key
    from ledger.proofs import check_inclusion_proof

    trusted = read_public_key(pubkey) if pubkey else None
    older = read_head(head) if head else None
    check = check_inclusion_proof(read_json(proof, "proof"), trusted, older)
    if as_json:
        typer.echo(json.dumps({"ok": check.ok, "message": check.message,
                               "position": check.position, "event": _jsonable(check.event)},
                              indent=2, default=str))
    elif check.ok:
        typer.echo(f"OK: {check.message}")
        typer.echo(_summary(check.event))
    if not check.ok:
        raise VerificationFailed(f"proof verification failed: {check.message}")


def _summary(event: dict[str, Any]) -> str:
    state = event.get("state") or {}
    kind = str(event.get("topic", "")).rsplit(".", 1)[-1]
    actor = state.get("actor") or {}
    stamp = state.get("timestamp")
    when = show_time(stamp.timestamp()) if hasattr(stamp, "timestamp") else str(stamp)
    parent = f" (parent {state['parent']})" if state.get("parent") else ""
    return (f"{kind} {state.get('name', '')}{parent}: domain {event.get('originator_id')} "
            f"version {event.get('originator_version')}, {when}, by {actor.get('user', '?')}"
            f"@{actor.get('host', '?')}, operation {state.get('operation_id', '-')}")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def register(app: typer.Typer) -> None:
    app.command("verify-proof")(verify_proof)
