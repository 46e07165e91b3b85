"""The backing chain a running QEMU has open for one drive, with the node name of each image."""

from __future__ import annotations

from typing import Any

from commands.drivers.qmp import Qmp


def backing_chain(qmp: Qmp, device: str) -> list[tuple[str, str]]:
    """``(file, node name)`` of each image of a drive's chain, the top first.

    Files come from ``query-block``'s image chain, node names from
    ``query-named-block-nodes`` (the format node of each file); ``[]`` when no drive
    or node is called ``device``.
    """
    top: dict[str, Any] | None = None
    for raw in qmp.execute("query-block"):
        ins = raw.get("inserted")
        if ins and device in (raw.get("device"), ins.get("node-name")):
            top = ins.get("image")
    nodes = qmp.execute("query-named-block-nodes", {"flat": True})
    chain = []
    while top:
        name = next((str(n["node-name"]) for n in nodes if n.get("file") == top["filename"]
                     and n.get("drv") == top.get("format")), "")
        chain.append((str(top["filename"]), name))
        top = top.get("backing-image")
    return chain
