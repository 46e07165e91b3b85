"""``xlsnap verify``: prove the ledger (or an export of it) was not altered."""

# No 'from __future__ import annotations': typer would compile every annotation string
# of every command at each start-up.

import json
import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from commands.cli.main import services
from commands.errors import UsageError, VerificationFailed

if TYPE_CHECKING:  # the rest loads when the command runs, not at every start-up
    from ledger.tree_heads import TreeHead
    from ledger.verification import Report


def verify(
    ctx: typer.Context,
    heads: Annotated[list[str] | None, typer.Option(
        "--head", help="A head file kept off this host (from 'seal --out'); repeatable.")]
    = None,
    pubkey: Annotated[str | None, typer.Option(
        "--pubkey", help="The public key every head must be signed with (PEM or hex).")]
    = None,
    export: Annotated[str | None, typer.Option(
        "--export", help="Verify this export file instead of the ledger (no database).")]
    = None,
    deep: Annotated[bool, typer.Option(
        "--deep", help="Also derive every replay checkpoint again from the log.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
) -> None:
    """Recompute the Merkle tree of the event log and check it against every recorded
    tree head and every --head file: each root must match (so the sealed log is a
    prefix of today's), each signature must verify under one key (--pubkey, else the
    key of the --head file, else the first head's). On failure the exit code is 3
    and the message names the first bad position.

    \b
    Examples:
      xlsnap verify
      xlsnap verify --head /mnt/offsite/head-2025-01-31.json --pubkey seal.pub
      xlsnap verify --export ledger.jsonl --pubkey seal.pub
    """
    from commands.handlers.integrity_keys import read_head, read_public_key

    external = [(path, read_head(path)) for path in heads or []]
    trusted = read_public_key(pubkey) if pubkey else None
    if export is not None:
        report = _verify_export(export, external, trusted)
        what = f"export {export}"
    else:
        report = _verify_ledger(ctx, external, trusted, deep)
        what = "ledger"
    _print(report, what, as_json)
    if not report.ok:
        raise VerificationFailed(f"{what} verification failed: {report.headline()}")


def _verify_ledger(ctx: typer.Context, external: "list[tuple[str, TreeHead]]",
                   trusted: bytes | None, deep: bool) -> "Report":
    from commands.handlers.integrity_keys import local_public_key
    from ledger.storage.location import is_postgres
    from ledger.tree_heads import HeadFormatError
    from ledger.verification import Problem, verify_ledger
    from projections import checkpoints
    from projections.replay import recheck_checkpoints

    svc = services(ctx, read_only=True)
    location = svc.settings.ledger
    if not is_postgres(location) and not os.path.exists(location):
        raise UsageError(f"no ledger at {location}")
    try:
        report = verify_ledger(location, external, trusted,
                               local_public_key(svc.settings.seal_key),
                               checkpoints.bindings(svc.view.db))
    except HeadFormatError as exc:
        raise VerificationFailed(f"ledger verification failed: recorded heads are malformed: "
                            f"{exc}") from None
    if not report.checks and not external:
        report.problems.append(Problem(
            "no tree heads: the ledger was never sealed, or its heads were removed (run "
            "'xlsnap seal' and keep the head off this host)"))
    if deep:
        report.problems += [Problem(p) for p in recheck_checkpoints(svc.app, svc.view.db)]
    return report


def _verify_export(path: str, external: "list[tuple[str, TreeHead]]",
                   trusted: bytes | None) -> "Report":
    import msgpack

    from ledger.tree_heads import HeadFormatError
    from ledger.verification import Problem, verify_log
    from projections.export import ExportError, export_mapper, open_export

    try:
        reader = open_export(path)
    except OSError as exc:
        raise UsageError(f"cannot read export {path}: {exc.strerror}") from None
    except ExportError as exc:
        raise VerificationFailed(f"export verification failed: {exc}") from None
    try:
        rows = reader.rows(mapper=export_mapper())
        report = verify_log(rows, reader.heads(), external, trusted, start=reader.first,
                            frontier=reader.frontier(), complete=reader.complete(),
                            dense=reader.dense())
    except (ExportError, HeadFormatError, ValueError, msgpack.UnpackException) as exc:
        raise VerificationFailed(f"export verification failed: {exc}") from None
    finally:
        reader.source.close()
    report.problems += [Problem(message, position) for message, position in reader.problems]
    if not report.checks:
        report.problems.append(Problem("the export carries no tree heads and none was given "
                                       "with --head: nothing to verify it against"))
    return report


def _print(report: "Report", what: str, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(_report_json(report), indent=2))
        return
    for check in report.checks:
        origin = "" if check.origin == "ledger" else f" from {check.origin}"
        typer.echo(f"{check.status:<9} {check.head.label()}{origin}: root "
                   f"{check.head.root_hash.hex()[:16]}…, key {check.head.key_id[:16]}")
    for note in report.notes:
        typer.echo(f"note: {note}")
    for problem in report.problems:
        where = f"position {problem.position}: " if problem.position is not None else ""
        typer.echo(f"problem: {where}{problem.message}")
    if report.ok:
        typer.echo(f"OK: {what}: {report.size - report.start + 1} events verified against "
                   f"{sum(c.status == 'ok' for c in report.checks)} tree heads")


def _report_json(report: "Report") -> dict[str, Any]:
    return {
        "ok": report.ok, "first_position": report.start, "events": report.size,
        "first_bad_position": report.first_bad_position,
        "heads": [{**c.head.to_json(), "origin": c.origin, "status": c.status}
                  for c in report.checks],
        "problems": [{"position": p.position, "message": p.message} for p in report.problems],
        "notes": report.notes,
    }


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
