"""The xlsnap client loads no Python module but its own (C and frozen ones only) until it needs more."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from commands.service.client import write_launcher
from commands.service.protocol import decode_request, encode_request
from tests.conftest import REPO
from tests.service_fixture import CLIENT_MODULES

#: Started as the launcher starts it (-IS): which modules does importing the client add,
#: and from which files?
_PROBE = ("import sys; sys.path.insert(0, {repo!r}); before = set(sys.modules); "
          "import commands.service.client; "
          "print(repr({{m: sys.modules[m].__spec__.origin "
          "for m in sorted(set(sys.modules) - before)}}))")


def test_the_client_imports_only_built_in_modules_and_its_own() -> None:
    out = subprocess.run([sys.executable, "-IS", "-c", _PROBE.format(repo=str(REPO))],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    loaded = ast.literal_eval(out)
    ours = {m: f for m, f in loaded.items() if m.split(".")[0] == "commands"}
    assert sorted(ours) == ["commands", "commands.service", "commands.service.client",
                            "commands.service.protocol"]
    others = {m: f for m, f in loaded.items() if m not in ours}
    python_files = {m: f for m, f in others.items()
                    if f not in ("built-in", "frozen") and not f.endswith(".so")}
    assert python_files == {}  # only C or frozen modules: no Python source read or run
    files = {str(Path(f).relative_to(REPO)) for f in ours.values()}
    packages = {"commands/__main__.py"}
    assert files | packages == set(CLIENT_MODULES)  # the copy a non-root test client runs


def test_a_request_round_trips_with_odd_words() -> None:
    argv = ["snapshot-create", "-n", "a b=c", "", "caf\udce9"]  # a byte that is not UTF-8
    env = {"XLSNAP_HOME": "/tmp/x=y", "EMPTY": ""}
    data = encode_request(argv, env, "/tmp", 1000)
    assert int.from_bytes(data[:4], "big") == len(data) - 4
    assert decode_request(data[4:]) == {"argv": argv, "env": env, "cwd": "/tmp", "uid": 1000}


def test_the_launcher_runs_the_client_without_site(tmp_path: Path) -> None:
    launcher = tmp_path / "xlsnap"
    write_launcher(str(launcher), sys.executable, str(REPO))
    assert launcher.read_text().splitlines()[0] == f"#!{sys.executable} -IS"
    assert launcher.stat().st_mode & 0o777 == 0o755
    run = subprocess.run([str(launcher), "--no-service", "--help"], capture_output=True,
                         text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert run.returncode == 0 and "snapshot-create" in run.stdout  # the fallback's exec
