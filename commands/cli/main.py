"""The ``xlsnap`` application object, global options, and error-to-exit-code mapping."""

from __future__ import annotations

import gc
import importlib
import os
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from commands.errors import INTERNAL_ERROR, XlsnapError, exit_code
from commands.config.settings import TOOLSTACKS, Settings

if TYPE_CHECKING:
    from commands.bootstrap import Services

app = typer.Typer(
    name="xlsnap",
    help="Snapshots of Xen domains, every operation recorded in an append-only event ledger.\n\n"
    "Example: xlsnap snapshot-create -n before-upgrade web\n\n"
    "Running domains (memory and live disks): xlsnap --toolstack xen snapshot-create web, or "
    "xlsnap --qmp-dir /run/qemu snapshot-create vm1 for a QEMU with /run/qemu/vm1.qmp.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    suggest_commands=True,   # typer 0.29 vendors a click that does not suggest by itself
    rich_markup_mode=None, context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def global_options(
    ctx: typer.Context,
    home: Annotated[str | None, typer.Option(
        "--home", envvar="XLSNAP_HOME", show_envvar=True,
        help="State folder [default: /var/lib/xen/snapshots for root, else "
             "$XDG_STATE_HOME/xlsnap].")] = None,
    ledger: Annotated[str | None, typer.Option(
        "--ledger", envvar="XLSNAP_LEDGER", show_envvar=True,
        help="Ledger database file, or a postgresql:// URL "
             "[default: HOME/ledger.sqlite].")] = None,
    config_dir: Annotated[str | None, typer.Option(
        "--config-dir", envvar="XLSNAP_CONFIG_DIR", show_envvar=True,
        help="Folder of domain configs, DOMAIN.cfg in xl.cfg syntax [default: /etc/xen].")] = None,
    toolstack: Annotated[str | None, typer.Option(
        "--toolstack", envvar="XLSNAP_TOOLSTACK", show_envvar=True,
        help="How domains are reached: xen (xl and libxl's QMP sockets), qemu (a running "
             "QEMU's QMP socket in --qmp-dir), offline (a stopped domain's DOMAIN.cfg), or "
             "auto: the first of qemu, xen, offline that finds the domain [default: auto].")]
    = None,
    qmp_dir: Annotated[str | None, typer.Option(
        "--qmp-dir", envvar="XLSNAP_QMP_DIR", show_envvar=True,
        help="Folder of running QEMUs' QMP sockets, one DOMAIN.qmp each (toolstack qemu).")]
    = None,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Say which toolstack reached the domain and what is planned.")]
    = False,
    new_ledger: Annotated[bool, typer.Option(
        "--new-ledger", help="Start an empty ledger although the home holds the domain "
                             "folders of an earlier one (whose ledger is missing).")]
    = False,
) -> None:
    """Global options come before the sub-command."""
    if toolstack is not None and toolstack not in TOOLSTACKS:
        raise typer.BadParameter(f"{toolstack!r} is not one of {', '.join(TOOLSTACKS)}",
                                 param_hint="'--toolstack'")
    ctx.obj = Settings.resolve(home, ledger, config_dir, toolstack, qmp_dir, verbose, new_ledger)


def services(ctx: typer.Context, read_only: bool = False) -> Services:
    """Open the ledger for a sub-command; closed when the command ends. A read-only
    command (a query) never creates the ledger or the home."""
    from commands.bootstrap import open_services  # the ledger's imports: not for --help

    root = ctx.find_root()
    settings: Settings = root.obj
    svc = open_services(settings, read_only=read_only)
    root.call_on_close(svc.close)
    return svc


#: Sub-commands: command name -> module under commands/cli/ with ``register(app)``.
SUBCOMMANDS = {
    "snapshot-create": "snapshot_create_cmd", "snapshot-list": "snapshot_list_cmd",
    "snapshot-delete": "snapshot_delete_cmd", "snapshot-revert": "snapshot_revert_cmd",
    "history": "history_cmd", "recover": "recover_cmd", "check": "check_cmd",
    "adopt": "adopt_cmd", "projections": "projections_cmd", "export": "export_cmd",
    "replay": "replay_cmd", "diff": "diff_cmd", "seal": "seal_cmd", "verify": "verify_cmd",
    "prove": "prove_cmd", "verify-proof": "verify_proof_cmd",
    "snapshot-info": "snapshot_info_cmd", "snapshot-parent": "snapshot_parent_cmd",
    "snapshot-current": "snapshot_current_cmd", "domains": "domains_cmd",
    "snapshot-hold": "snapshot_hold_cmd", "snapshot-release": "snapshot_release_cmd",
    "snapshot-holds": "snapshot_holds_cmd", "wrap": "wrap_cmd", "prune": "prune_cmd",
    "snapshot-edit": "snapshot_edit_cmd", "ledger": "ledger_cmd",
}

#: The global options that take a value (``_invoked`` skips it); the others are flags.
VALUE_OPTIONS = frozenset({"--home", "--ledger", "--config-dir", "--toolstack", "--qmp-dir"})
FLAG_OPTIONS = frozenset({"-v", "--verbose", "--new-ledger"})


def _global_flags(argv: list[str]) -> set[str]:
    """The flags among the global options (the words before the sub-command)."""
    flags: set[str] = set()
    words = iter(argv)
    for word in words:
        if word in VALUE_OPTIONS:
            next(words, None)
        elif word.startswith("-"):
            flags.add(word)
        else:
            break
    return flags


def _invoked(argv: list[str]) -> str | None:
    """The sub-command ``argv`` runs: the first word after the global options.

    None when that is not plainly a sub-command (help, no command, an unknown word or
    option, shell completion): then every sub-command is needed, for the listing or
    the "did you mean" hint.
    """
    if os.environ.get("_XLSNAP_COMPLETE"):
        return None
    words = iter(argv)
    for word in words:
        if word in VALUE_OPTIONS:
            next(words, None)
        elif word in FLAG_OPTIONS or word.partition("=")[0] in VALUE_OPTIONS:
            continue
        else:
            return word if word in SUBCOMMANDS else None
    return None


def _register(only: str | None = None) -> None:
    """Add sub-command ``only`` to ``app``, or every sub-command (the default).

    Each sub-command costs its imports and typer's reading of its signature, so a
    run builds only the one it runs.
    """
    for name in (only,) if only else SUBCOMMANDS:
        importlib.import_module(f"commands.cli.{SUBCOMMANDS[name]}").register(app)


#: The whole command tree, built once by ``prebuild`` (xlsnapd, before it forks workers).
_prebuilt: Any = None


def prebuild() -> None:
    """Register every sub-command, build the click command and parse each one's options once
    (typer makes its converters on first use), for every later ``main`` (xlsnapd's workers)."""
    global _prebuilt
    _register()
    _prebuilt = typer.main.get_command(app)
    ctx = _prebuilt.make_context("xlsnap", [], resilient_parsing=True)
    for name, sub in _prebuilt.commands.items():
        sub.make_context(name, [], parent=ctx, resilient_parsing=True)


def command_tree(argv: list[str]) -> Any:
    """The click command that runs ``argv``: the prebuilt tree, else one with only its
    sub-command registered."""
    if _prebuilt is not None:
        return _prebuilt
    app.registered_commands.clear()
    _register(_invoked(argv))
    return typer.main.get_command(app)


def _on_sigterm(signum: int, frame: FrameType | None) -> Any:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors print one line on stderr and set the exit code.

    Usage errors are typer's own (exit 2); xlsnap's errors carry their exit code.
    """
    # The imports make ~30,000 objects that live until exit. Cycle collection leaves them
    # alone: none runs while they are made, and gc.freeze keeps later ones, and the
    # interpreter's clean-up at exit, off them (10-20 ms of a run).
    gc.disable()
    try:
        command = command_tree(sys.argv[1:] if argv is None else argv)
    finally:
        gc.freeze()
        gc.enable()
    signal.signal(signal.SIGTERM, _on_sigterm)
    verbose = bool(_global_flags(sys.argv[1:] if argv is None else argv)
                   & {"-v", "--verbose"})
    # A parent may have left them blocked (the mask is inherited): an operation holds
    # them itself where it must (commands.engine.operation).
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        command.main(args=argv, prog_name="xlsnap", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except XlsnapError as exc:
        return _fail("\n".join(filter(None, (exc.message, exc.detail))), exc.exit_code,
                     verbose)
    except BrokenPipeError:
        return 0
    except Exception as exc:
        code = exit_code(exc)
        if code == INTERNAL_ERROR:  # a bug: one line, the traceback only on request
            if os.environ.get("XLSNAP_DEBUG"):
                raise
            return _fail(f"internal error: {type(exc).__name__}: {exc} "
                         "(set XLSNAP_DEBUG=1 for a traceback)", code)
        return _fail(str(exc), code, verbose)
    return 0


def _fail(message: str, code: int, verbose: bool = False) -> int:
    """One line on stderr; a tool's further lines (in the ledger too) only with --verbose."""
    first, *rest = [line.strip() for line in message.splitlines() if line.strip()] or [""]
    print(f"xlsnap: error: {first}{' (more with --verbose)' if rest and not verbose else ''}",
          file=sys.stderr)
    for line in rest if verbose else ():
        print(f"xlsnap:   {line}", file=sys.stderr)
    return code


def entry_point() -> None:
    """Console-script entry: ``sys.exit(main())``."""
    sys.exit(main())
