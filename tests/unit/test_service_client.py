"""The xlsnap client imports only the standard library's socket layer before it needs more."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO
from tests.service_fixture import CLIENT_MODULES

_PROBE = ("import sys, commands.service.client; "
          "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
          "('commands', 'ledger', 'projections', 'typer', 'click', 'eventsourcing', "
          "'msgpack', 'cryptography', 'json', 'tomllib'))))")


def test_the_client_imports_no_typer_eventsourcing_or_project_modules() -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                         cwd=REPO, check=True, timeout=60).stdout.split()
    assert out == ["commands", "commands.service", "commands.service.client",
                   "commands.service.protocol", "json", "json.decoder", "json.encoder",
                   "json.scanner"]
    modules = {m.replace(".", "/") + ".py" for m in out if m.startswith("commands.service.")}
    packages = {"commands/__init__.py", "commands/__main__.py", "commands/service/__init__.py"}
    assert modules | packages == set(CLIENT_MODULES)  # the copy a non-root test client runs
