"""The real xl on this host: without a Xen hypervisor it must give NoHypervisor."""

from __future__ import annotations

import os

import pytest

from commands.drivers.xl import NoHypervisor, Xl

DEBIAN_WRAPPER = "/usr/sbin/xl"                 # Debian's xen-utils-wrapper (a shell script)
BARE_BINARY = "/usr/lib/xen-4.17/bin/xl"        # the binary the wrapper would exec
_xen_running = os.path.exists("/sys/hypervisor/type")


@pytest.mark.skipif(not os.path.exists(DEBIAN_WRAPPER), reason="xl is not installed")
@pytest.mark.skipif(_xen_running, reason="a hypervisor runs here")
def test_real_xl_without_xen_is_no_hypervisor() -> None:
    with pytest.raises(NoHypervisor) as caught:
        Xl(binary=DEBIAN_WRAPPER, timeout=30).list_long()
    assert caught.value.result.returncode == 1
    assert "Can't find hypervisor information in sysfs!" in caught.value.result.stderr
    assert str(caught.value).startswith("no Xen hypervisor is running on this host")


@pytest.mark.skipif(not os.path.exists(BARE_BINARY), reason="xen-utils-4.17 is not installed")
@pytest.mark.skipif(_xen_running, reason="a hypervisor runs here")
def test_bare_xl_binary_without_xen_is_no_hypervisor() -> None:
    with pytest.raises(NoHypervisor) as caught:
        Xl(binary=BARE_BINARY, timeout=30).domid("web")
    assert "cannot init xl context" in caught.value.result.stderr
    assert "\n" not in str(caught.value)
