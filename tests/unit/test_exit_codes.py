"""Every error class of xlsnap maps to an exit code that the README's table lists.

The walk finds every exception class defined in the ``commands`` and ``ledger``
packages; each must have its expected code below (a new class must be placed), and
each code must be a row of the table under "Exit codes" in README.md. The codes come
from one place, ``commands/errors.py``: no other module writes an exit code as a number.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import ast
import re

import commands
import ledger
from commands.errors import EXIT_CODES, INTERNAL_ERROR, exit_code
from tests.conftest import REPO

#: The exit code each error class must end a command with (70: caught where it is raised;
#: a bug if it ever reaches the top).
EXPECTED = {
    # commands/errors.py
    "XlsnapError": 1, "UsageError": 2, "Interrupted": 130, "ConfigError": 2, "OperationFailed": 1,
    "AttentionNeeded": 3, "LedgerBlocked": 3, "LedgerWriteFailed": 3, "ResourceBusy": 3,
    "RecordMismatch": 3, "VerificationFailed": 3,
    # commands/service/
    "Refused": 2, "PolicyError": 2,
    # commands/engine/operation.py: an undo that failed, a part-way delete, the ledger changed or
    # unwritable: all leave something for the user (recover, delete again): never 1
    "CompensationFailed": 3, "PartlyDone": 3, "LedgerChanged": 3, "Unrecorded": 3,
    # ledger/errors.py and the other ledger errors
    "LedgerError": 2, "InvalidRequest": 2, "OperationInFlight": 3, "LedgerUnavailable": 2,
    "SealKeyError": 2, "SealRefused": 2,
    # a PostgreSQL ledger: server unreachable (nothing changed), schema of a newer xlsnap
    "LedgerUnreachable": 1, "LedgerTooNew": 3,
    # drivers: a tool failed before anything changed (operations turn these into steps)
    "DriverError": 1, "ToolMissing": 1, "ToolTimeout": 1, "QemuImgError": 1,
    "XlError": 1, "NoHypervisor": 1, "NotPrivileged": 1, "DomainNotFound": 1,
    "XlOutputError": 1,
    "QmpError": 1, "QmpUnavailable": 1, "QmpTimeout": 1, "QmpJobFailed": 1,
    "QmpMigrationFailed": 1, "QmpBusy": 3, "UnsafePath": 2,
    # a snapshot-load that would find another snapshot by ID: the step fails, is undone
    "AmbiguousTag": 1,
    # the state folders and the ledger file (commands/state/private_folders.py and
    # commands/state/ledger_file.py)
    "UnsafeFolder": 2, "NotALedger": 2, "LedgerMissing": 3,
    # a failed step left an image marked corrupt (commands/planning/corrupt_images.py)
    "ImageMarkedCorrupt": 3,
    # caught where they are raised
    "NotReached": INTERNAL_ERROR, "_Bad": INTERNAL_ERROR, "MalformedRow": INTERNAL_ERROR,
    "ProofError": INTERNAL_ERROR, "HeadFormatError": INTERNAL_ERROR,
}


def _error_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for package in (commands, ledger):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if info.name.endswith("__main__"):
                continue  # running it is its only job
            module = importlib.import_module(info.name)
            for name, obj in inspect.getmembers(module, inspect.isclass):
                if issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                    found[name] = obj
    return found


def readme_codes() -> dict[int, str]:
    """The rows of the README's exit-code table: code -> meaning."""
    text = (REPO / "README.md").read_text()
    section = text.split("### Exit codes", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+?) \|$", section, flags=re.M)
    return {int(code): meaning for code, meaning in rows}


def test_the_readme_table_has_the_codes_the_brief_promises() -> None:
    table = readme_codes()
    assert {0, 1, 2, 3, INTERNAL_ERROR} <= set(table)
    assert "nothing changed" in table[1] and "recovery" in table[3]


def test_every_error_class_has_a_code_from_the_readme_table() -> None:
    classes = _error_classes()
    assert set(classes) == set(EXPECTED), "place each new error class in EXPECTED"
    table = readme_codes()
    for name, cls in classes.items():
        code = exit_code(cls.__new__(cls))  # the code depends on the class alone
        assert code == EXPECTED[name], name
        assert code in table, f"{name} exits {code}, which README.md does not list"


def test_every_code_of_the_table_in_errors_py_is_a_row_of_the_readme() -> None:
    table = readme_codes()
    codes = {code for _, code in EXIT_CODES} | {INTERNAL_ERROR, 0}
    codes |= {cls.exit_code for cls in _error_classes().values() if hasattr(cls, "exit_code")}
    assert codes == set(table), "commands/errors.py and README.md's table disagree"


def literal_exit_codes(source: str) -> list[str]:
    """``exit_code = N``, ``Exit(N)``, ``sys.exit(N)``, ``return N`` in a ``main`` or a
    ``run_*``: exit codes written as numbers (0 is no error and may be written)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        value = None
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "exit_code" for t in node.targets):
            value = node.value
        elif isinstance(node, ast.Call) and node.args and (
                getattr(node.func, "attr", getattr(node.func, "id", "")) in ("Exit", "exit")):
            value = node.args[0]
        elif isinstance(node, ast.FunctionDef) and (node.name in ("main", "_main")
                                                    or node.name.startswith("run_")):
            found += [f"{node.name}: return {r.value.value}" for r in ast.walk(node)
                      if isinstance(r, ast.Return) and isinstance(r.value, ast.Constant)
                      and isinstance(r.value.value, int) and r.value.value]
        if isinstance(value, ast.Constant) and isinstance(value.value, int) and value.value:
            found.append(f"line {node.lineno}: {value.value}")
    return found


def test_the_finder_sees_a_literal_code() -> None:
    assert literal_exit_codes("raise typer.Exit(3)\n") == ["line 1: 3"]
    assert literal_exit_codes("def main():\n    return 2\n") == ["main: return 2"]
    assert literal_exit_codes("raise typer.Exit(RecordMismatch.exit_code)\n") == []


def test_no_module_but_errors_py_writes_an_exit_code_as_a_number() -> None:
    found = {str(p.relative_to(REPO)): literal_exit_codes(p.read_text())
             for package in ("commands", "ledger", "projections")
             for p in (REPO / package).rglob("*.py") if p != REPO / "commands/errors.py"}
    assert {path: codes for path, codes in found.items() if codes} == {}
