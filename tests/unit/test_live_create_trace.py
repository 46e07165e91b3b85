"""The path of ``snapshot-create`` of a running QEMU domain through the tree, traced.

``sys.setprofile`` over an in-process live create (QEMU as a QMP model): the files of
ours it runs code in, in the order first entered. A file is entered again while it is
still on the stack only through a callback it handed down (a closure or bound method
the lower file does not import): never by importing its way back up.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import FrameType
from typing import Any

from commands.handlers.create import create_snapshot
from commands.handlers.messages import CreateSnapshot
from tests.unit.test_import_layers import ROOT, import_graph, module_name
from tests.unit.test_live_handlers_in_process import LiveWorld

OURS = tuple(f"{ROOT}/{package}/" for package in ("commands", "ledger", "projections"))


def _ours(frame: FrameType | None) -> str | None:
    name = frame.f_code.co_filename if frame is not None else ""
    return name[len(str(ROOT)) + 1:] if name.startswith(OURS) else None


def _importing(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def trace_create(tmp: Path) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Files in order of first entry, and re-entries ``(caller, callee, function)``."""
    world = LiveWorld(tmp)
    world.svc.sync()   # the ledger opens before: opening it is not the create's path
    order: list[str] = []
    reentries: list[tuple[str, str, str]] = []

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        here = _ours(frame)
        if event != "call" or here is None or _importing(frame):
            return
        if here not in order:
            order.append(here)
        chain: list[str] = []
        below = frame.f_back
        while below is not None:
            file = _ours(below)
            if file and (not chain or chain[-1] != file):
                chain.append(file)
            below = below.f_back
        if chain and here != chain[0] and here in chain:
            reentries.append((chain[0], here, frame.f_code.co_name))

    sys.setprofile(profile)
    try:
        create_snapshot(CreateSnapshot("web", name="s1"), world.svc)
    finally:
        sys.setprofile(None)
        world.close()
    return order, reentries


def test_a_live_create_goes_down_the_layers_and_comes_back_only_through_callbacks(
        tmp_path: Path) -> None:
    order, reentries = trace_create(tmp_path)
    assert order[0] == "commands/handlers/create.py"
    first = {f.split("/")[1] if f.startswith("commands/") else f.split("/")[0]: n
             for n, f in reversed(list(enumerate(order)))}
    # resolve (toolstacks, drivers) -> plan -> the live handler -> the operation -> the
    # ledger's read model (bootstrap's wiring builds the drivers and the progress display)
    assert first["toolstacks"] < first["planning"] < order.index(
        "commands/handlers/create_live.py") < order.index("commands/engine/operation.py") \
        < first["projections"]
    graph = import_graph()
    for caller, callee, function in reentries:
        back = module_name(ROOT / callee) in graph[module_name(ROOT / caller)]
        assert not back, f"{caller} calls back into {callee} ({function}) by importing it"
    print("\n".join(f"{n:2} {f}" for n, f in enumerate(order, 1)))
    print("callbacks:", sorted(set(reentries)))
