"""The ``xlsnap`` application object, global options, and error-to-exit-code mapping."""

from __future__ import annotations

import importlib
import os
import signal
import sys
from types import FrameType
from typing import Annotated, Any

import typer

from commands.drivers.process import DriverError
from commands.errors import XlsnapError
from commands.services import Services, open_services
from commands.settings import TOOLSTACKS, Settings
from ledger.errors import InvalidRequest, LedgerUnavailable, OperationInFlight

app = typer.Typer(
    name="xlsnap",
    help="Snapshots of Xen domains, every operation recorded in an append-only event ledger.\n\n"
    "Example: xlsnap snapshot-create -n before-upgrade web\n\n"
    "Running domains (memory and live disks): xlsnap --toolstack xen snapshot-create web, or "
    "xlsnap --qmp-dir /run/qemu snapshot-create vm1 for a QEMU with /run/qemu/vm1.qmp.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
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
        help="Ledger database file [default: HOME/ledger.sqlite].")] = None,
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
) -> None:
    """Global options come before the sub-command."""
    if toolstack is not None and toolstack not in TOOLSTACKS:
        raise typer.BadParameter(f"{toolstack!r} is not one of {', '.join(TOOLSTACKS)}",
                                 param_hint="'--toolstack'")
    ctx.obj = Settings.resolve(home, ledger, config_dir, toolstack, qmp_dir, verbose)


def services(ctx: typer.Context) -> Services:
    """Open the ledger for a sub-command; closed when the command ends."""
    root = ctx.find_root()
    settings: Settings = root.obj
    svc = open_services(settings)
    root.call_on_close(svc.close)
    return svc


#: Sub-command modules under commands/cli/, each with ``register(app)``.
SUBCOMMANDS = ("snapshot_create", "snapshot_list", "snapshot_delete", "snapshot_revert",
               "history", "recover", "check", "adopt", "projections_cmd",
               "export", "replay", "diff", "seal", "verify", "prove", "verify_proof")


def _register() -> None:
    for name in SUBCOMMANDS:
        importlib.import_module(f"commands.cli.{name}").register(app)


def _on_sigterm(signum: int, frame: FrameType | None) -> Any:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors print one line on stderr and set the exit code.

    Usage errors are typer's own (exit 2); xlsnap's errors carry their exit code.
    """
    _register()
    signal.signal(signal.SIGTERM, _on_sigterm)
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="xlsnap", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except XlsnapError as exc:
        return _fail(exc.message, exc.exit_code)
    except OperationInFlight as exc:
        return _fail(str(exc), 3)
    except (InvalidRequest, LedgerUnavailable) as exc:
        return _fail(str(exc), 2)
    except DriverError as exc:
        return _fail(str(exc), 1)
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: one line, the traceback only on request
        if os.environ.get("XLSNAP_DEBUG"):
            raise
        return _fail(f"internal error: {type(exc).__name__}: {exc} "
                     "(set XLSNAP_DEBUG=1 for a traceback)", 70)
    return 0


def _fail(message: str, code: int) -> int:
    print(f"xlsnap: error: {message}", file=sys.stderr)
    return code


def entry_point() -> None:
    """Console-script entry: ``sys.exit(main())``."""
    sys.exit(main())
