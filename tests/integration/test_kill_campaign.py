"""A short random-kill campaign (scripts/kill_campaign.py): stopped and live, seeded.

Each round kills xlsnap at a random moment, runs ``recover``, and reads back every
snapshot's and the current disks' guest-visible content against the model.
"""

from __future__ import annotations

import importlib.util
import random
import re
import shutil
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.conftest import REPO, requires_qemu_img

pytestmark = [pytest.mark.slow, requires_qemu_img]


def test_short_kill_campaign_loses_nothing() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "kill_campaign.py"),
                           "--seed", "5", "--seconds", "140"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = dict(re.findall(r"^  ([a-z -]+): (\d+)$", proc.stdout, re.M))
    assert int(figures["kills"]) > 0 and int(figures["recovers"]) > 0
    assert int(figures["snapshot images read"]) > 0
    assert proc.stdout.count("content or check mismatches: 0") == proc.stdout.count("rounds:")


def _campaign_module():
    spec = importlib.util.spec_from_file_location("kill_campaign",
                                                  REPO / "scripts" / "kill_campaign.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["kill_campaign"] = module
    spec.loader.exec_module(module)
    return module


def _scripted(kc, domain, script: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    """A campaign on ``domain`` that has played ``script`` (rounds 1..n, none killed):
    ``(campaign, model)``."""
    campaign = kc.Campaign(domain, random.Random(1))
    model = kc.Model(current=[0, 0])
    for r, forced in enumerate(script, start=1):
        campaign.round(r, model, forced)
    return campaign, model


def test_campaign_reads_what_a_merging_delete_renamed(tmp_path: Path) -> None:
    """Deleting external k1 commits k2's base (k1's overlay) into k1's base and renames
    k2's recorded file: the campaign must read k2 where its record says now, and find
    its content there (CI, seed 5: the campaign read the removed overlay and failed)."""
    kc = _campaign_module()
    campaign, model = _scripted(kc, kc.Stopped(tmp_path / "stopped"), [
        ("create-external", "k1"), ("create-external", "k2"), ("create-internal", "k3"),
        ("delete", "k1")])
    assert sorted(model.snaps) == ["k2", "k3"]
    k2 = campaign.record("k2")["disks"][0]
    assert k2["file"] == str(tmp_path / "stopped" / "images" / "a.qcow2")
    assert campaign.figures["snapshot images read"] > 0
    assert campaign.problems == []
    # and the campaign still sees a loss: overwrite k2's state and look again
    kc.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x77 0 {kc.PATTERN}",
            k2["file"]]).check_returncode()
    campaign.verify(5, model)
    assert any("snapshot k2" in p and "does not hold" in p for p in campaign.problems)


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                    reason="qemu-system-x86_64 is not installed")
def test_deleting_an_external_snapshot_under_an_internal_one_keeps_the_base(
        tmp_path: Path) -> None:
    """A running QEMU: external k1, then internal k2 (its tag in k1's overlay, the disk in
    use), then delete k1. The base k1 stands on is what the disk and k2 read through. The
    planner took k2's record (internal: its file is the overlay) for an image above the
    overlay and made the overlay its own backing file: the base looked childless and was
    removed under the running disk (found by the broadened campaign, seed 41)."""
    kc = _campaign_module()
    with ExitStack() as stack:
        campaign, model = _scripted(kc, kc.Live(tmp_path / "live", stack), [
            ("create-external", "k1"), ("create-internal", "k2"), ("delete", "k1")])
        assert (tmp_path / "live" / "qmp" / "web-disks" / "disk0.qcow2").exists()
        campaign.round(4, model, ("revert", "k2"))
        campaign.round(5, model, ("delete", "k2"))
        assert campaign.problems == []
        assert model.snaps == {} and campaign.figures["reverts done"] == 1


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                    reason="qemu-system-x86_64 is not installed")
@pytest.mark.parametrize("fault", [None, "kill:1:effect"])
def test_a_live_commit_below_a_snapshots_base_leaves_check_clean(
        tmp_path: Path, fault: str | None) -> None:
    """A running QEMU: k1, k2 external; revert k2 (a fresh overlay on k1's overlay); k3
    external on that overlay; delete k1. QEMU's block-commit of k1's overlay re-points the
    image above it, k3's base, itself: the step (or, killed after the commit, recover's
    probe of it) must record that image's new fingerprint, or ``check`` calls k3's base
    changed by someone else (the campaign, seed 50)."""
    kc = _campaign_module()
    with ExitStack() as stack:
        domain = kc.Live(tmp_path / "live", stack)
        campaign, model = _scripted(kc, domain, [
            ("create-external", "k1"), ("create-external", "k2"), ("revert", "k2"),
            ("create-external", "k3")])
        if fault is None:
            campaign.round(5, model, ("delete", "k1"))
        else:
            killed = subprocess.run(
                [sys.executable, "-m", "commands", "snapshot-delete", "-n", "k1", "web"],
                cwd=REPO, env={**domain.env(), "XLSNAP_FAULT_INJECT": fault},
                capture_output=True, text=True, timeout=300)
            assert killed.returncode == -9
            code, out, err, _ = domain.xlsnap("recover", "web")
            assert code == 0 and "finished delete 'k1'" in out, err
            campaign.refresh()
            del model.snaps["k1"]
            campaign.verify(5, model)
        assert campaign.problems == []
        assert sorted(model.snaps) == sorted(campaign.records) == ["k2", "k3"]


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                    reason="qemu-system-x86_64 is not installed")
def test_recover_carries_on_a_commit_job_that_ended_but_was_not_dismissed(
        tmp_path: Path) -> None:
    """A live delete killed with its commit job ended by QEMU (pivoted) but not dismissed
    (here: killed at the step's intent, the job then run by hand as the step runs it):
    ``recover`` carries the job on. The step read the image above the top
    from the chain as it was before, and the top was gone: recover died with a ValueError
    (exit 70; the campaign, seed 55)."""
    import time

    from commands.drivers.qmp_chain import backing_chain
    from commands.planning.live_merge import _job_id

    kc = _campaign_module()
    with ExitStack() as stack:
        domain = kc.Live(tmp_path / "live", stack)
        campaign, model = _scripted(kc, domain, [("create-external", "k1"), ("revert", "k1")])
        killed = subprocess.run(
            [sys.executable, "-m", "commands", "snapshot-delete", "-n", "k1", "web"],
            cwd=REPO, env={**domain.env(), "XLSNAP_FAULT_INJECT": "kill:1:intent"},
            capture_output=True, text=True, timeout=300)
        assert killed.returncode == -9, killed.stderr
        q = domain.qmp()
        (top, top_node), (base, base_node) = backing_chain(q, "drv0")[:2]
        job = _job_id("commit", top)
        q.execute("block-commit", {"job-id": job, "device": "drv0", "top-node": top_node,
                                   "base-node": base_node, "auto-finalize": False,
                                   "auto-dismiss": False})
        for _ in range(3000):
            status = {j["id"]: j["status"] for j in q.execute("query-jobs")}[job]
            if status == "ready":
                q.execute("job-complete", {"id": job})
            elif status == "pending":
                q.execute("job-finalize", {"id": job})
            elif status == "concluded":
                break
            time.sleep(0.01)
        assert [f for f, _ in backing_chain(q, "drv0")][0] == base   # pivoted, not dismissed
        code, out, err, _ = domain.xlsnap("recover", "web")
        assert code == 0 and "finished delete 'k1'" in out, err
        assert q.execute("query-jobs") == []
        campaign.refresh()
        del model.snaps["k1"]
        campaign.verify(3, model)
        assert campaign.problems == []
