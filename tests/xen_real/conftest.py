"""The real-Xen tier: runs only when selected (``-m xen_real``) or ``XLSNAP_XEN_REAL=1``.

It builds a Debian dom0 with Xen 4.17 (scripts/xen_in_qemu/build.sh, cached under
/var/tmp/xlsnap-xen), boots it under QEMU/TCG and reads the scenarios' outcomes from the
serial log: about 10 minutes from nothing, so the default runs leave it out.
"""

from __future__ import annotations

import os

import pytest


def selected(config: pytest.Config) -> bool:
    """True when the command line's -m names the tier, or the environment asks for it."""
    return "xen_real" in (config.getoption("markexpr") or "") \
        or os.environ.get("XLSNAP_XEN_REAL") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if selected(config):
        return
    skip = pytest.mark.skip(reason="the real-Xen tier (~10 min) runs with -m xen_real "
                                   "or XLSNAP_XEN_REAL=1")
    for item in items:
        if item.get_closest_marker("xen_real") is not None:
            item.add_marker(skip)
