"""The per-snapshot ``snapshotdata-<name>.libxl-json`` files, derived from the ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from commands.drivers.process import ProcessResult
from commands.files import atomic_write, remove_file
from commands.folders import UnsafeFolder, private_dir


def metadata_path(domain_dir: Path, name: str) -> Path:
    return domain_dir / f"snapshotdata-{name}.libxl-json"


def render_libxl_json(record: dict[str, Any]) -> str:
    """A snapshot record as libxl prints JSON: 4-space indent, keys in record order."""
    return json.dumps(record, indent=4) + "\n"


def write_metadata(domain_dir: Path, name: str, record: dict[str, Any]) -> ProcessResult:
    """Write one snapshot's metadata file atomically (as a step's result)."""
    try:
        private_dir(domain_dir)
    except UnsafeFolder as exc:  # inside an operation: a failed step, undone like others
        raise OSError(str(exc)) from None
    path = metadata_path(domain_dir, name)
    atomic_write(path, render_libxl_json(record).encode(), mode=0o644)
    return ProcessResult(["write", str(path)], 0)


def remove_metadata(domain_dir: Path, name: str) -> ProcessResult:
    """Remove one snapshot's metadata file if present (as a step's result)."""
    path = metadata_path(domain_dir, name)
    removed = remove_file(path)
    return ProcessResult(["unlink", str(path)], 0, detail={"removed": removed})
