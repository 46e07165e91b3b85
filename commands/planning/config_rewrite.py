"""The step that points a domain's config at its new overlays (external snapshots)."""

from __future__ import annotations

import os
from pathlib import Path

from commands.config.disk_spec import DiskSpec, format_disk_spec
from commands.config.domains import DiskEntry, Domain
from commands.config.xlcfg import replace_spans
from commands.config.xlcfg_literals import quote_string
from commands.engine.actions import StepSpec
from commands.errors import UsageError
from commands.state.atomic_files import sha256_bytes, sha256_file


def config_rewrite_step(domain: Domain, externals: list[tuple[DiskEntry, str]],
                        name: str, formats: dict[str, str] | None = None) -> StepSpec:
    """Point the domain's disks at their overlays; the old config is kept beside it.

    A config that is a symbolic link stays one: the file it points to is rewritten (in
    its own folder, atomically) and the backup kept beside that file.
    """
    link, config = domain.config_path, domain.config
    assert link is not None and config is not None
    path = Path(os.path.realpath(link))
    old = config.text
    replacements: dict[tuple[int, int], str] = {}
    for entry, overlay in externals:
        spec = entry.spec
        new_spec = DiskSpec(vdev=spec.vdev, target=overlay,
                            format=(formats or {}).get(spec.vdev, "qcow2"),
                            access=spec.access, devtype=spec.devtype,
                            backendtype=spec.backendtype, script=spec.script, extra=spec.extra)
        assert entry.span is not None
        start, end = entry.span
        quote = old[start] if old[start] in "'\"" else '"'
        replacements[(start, end)] = quote_string(format_disk_spec(new_spec), quote)
    new = replace_spans(old, replacements)
    backup = path.with_name(f"{path.name}.before-{name}")
    if os.path.lexists(backup):
        raise UsageError(f"{backup} exists already; move it away first")
    return StepSpec("config-rewrite", str(path), {
        "path": str(path), "link": str(link) if str(link) != str(path) else None,
        "backup": str(backup), "new_text": new,
        "sha256_before": sha256_file(path), "sha256_after": sha256_bytes(new.encode()),
        "mode": os.stat(path).st_mode & 0o777,
    })
