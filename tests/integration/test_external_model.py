"""A state machine against a model: random internal/external snapshots, guest writes of
distinct patterns, reverts and deletes on a stopped domain. After every step each
snapshot and each current disk reads exactly what the model says, ``check`` finds
nothing, and the rebuilt projection equals the incremental one."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from commands.handlers.delete import delete_snapshot
from commands.handlers.messages import DeleteSnapshot, RevertSnapshot
from commands.handlers.revert import revert_snapshot
from tests.conftest import Scratch, qemu_img, write_pattern
from tests.disk_states import check_clean, current_disks, states, take

SIZE = 2 * 1024 * 1024
SLOT = 65536
DEVICES = ("xvda", "xvdb")

Content = dict[int, int]          # slot -> byte written there (others read zeros)


def digest(content: Content) -> str:
    """sha256 of the raw disk the model's content describes."""
    raw = bytearray(SIZE)
    for slot, byte in content.items():
        raw[slot * SLOT:(slot + 1) * SLOT] = bytes([byte]) * SLOT
    return hashlib.sha256(bytes(raw)).hexdigest()


class ExternalTree(RuleBasedStateMachine):
    """The real domain and a model of what every snapshot holds."""

    @initialize(chain=st.integers(0, 3))
    def make_domain(self, chain: int) -> None:
        """The domain, with a chain of ``chain`` external snapshots to start from (merges
        need chains and branches, which random steps alone reach rarely)."""
        root = Path(tempfile.mkdtemp(prefix="xlsnap-model-"))
        self.scratch = Scratch(root, root / "xen", root / "images", root / "state")
        self.scratch.config_dir.mkdir()
        self.scratch.images.mkdir()
        for disk in (self.scratch.disk_a, self.scratch.disk_b):
            qemu_img("create", "-q", "-f", "qcow2", str(disk), str(SIZE))
        self.scratch.write_config([f"{self.scratch.disk_a},qcow2,xvda,rw",
                                   f"{self.scratch.disk_b},qcow2,xvdb,rw"])
        self.current: dict[str, Content] = {d: {} for d in DEVICES}
        self.snaps: dict[str, dict[str, Content]] = {}
        self.counter = 0
        self.pattern = 0
        for slot in range(chain):
            self.guest_writes(slot)
            self._create(external=True)

    def teardown(self) -> None:
        """Every tree ends deleted oldest first, the model checked after each delete: each
        example so deletes at every position its tree has."""
        if not hasattr(self, "scratch"):
            return
        try:
            for name in sorted(self.snaps, key=lambda n: int(n[1:])):
                self._delete(name)
                self.real_images_agree_with_the_model()
        finally:
            shutil.rmtree(self.scratch.root, ignore_errors=True)

    @rule(slot=st.integers(0, 15))
    def guest_writes(self, slot: int) -> None:
        self.pattern = self.pattern % 99 + 1
        disks = current_disks(self.scratch)
        for shift, device in enumerate(DEVICES):
            byte = self.pattern + 100 * shift
            write_pattern(disks[device], byte, slot * SLOT, SLOT)
            self.current[device][slot] = byte

    @rule()
    def create_internal(self) -> None:
        self._create(external=False)

    @rule()
    def create_external(self) -> None:
        self._create(external=True)

    @rule()
    def create_external_again(self) -> None:
        """A second rule: chains of overlays, where merges happen, come up more often."""
        self._create(external=True)

    def _create(self, external: bool) -> None:
        self.counter += 1
        name = f"s{self.counter}"
        take(self.scratch, name, external)
        self.snaps[name] = {d: dict(c) for d, c in self.current.items()}

    @precondition(lambda self: self.snaps)
    @rule(data=st.data())
    def revert(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.snaps)))
        svc = self.scratch.services()
        try:
            revert_snapshot(RevertSnapshot(self.scratch.name, name), svc)
        finally:
            svc.close()
        self.current = {d: dict(c) for d, c in self.snaps[name].items()}

    @precondition(lambda self: self.snaps)
    @rule(data=st.data())
    def revert_again(self, data: st.DataObject) -> None:
        """A second rule: branches (several children of one image) come up more often."""
        self.revert(data)

    @precondition(lambda self: self.snaps)
    @rule(data=st.data())
    def delete_again(self, data: st.DataObject) -> None:
        self.delete(data)

    @precondition(lambda self: self.snaps)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        self._delete(data.draw(st.sampled_from(sorted(self.snaps))))

    def _delete(self, name: str) -> None:
        svc = self.scratch.services()
        try:
            delete_snapshot(DeleteSnapshot(self.scratch.name, name), svc)
        finally:
            svc.close()
        del self.snaps[name]

    @invariant()
    def real_images_agree_with_the_model(self) -> None:
        if not hasattr(self, "scratch"):
            return
        expected = {f"current:{d}": digest(c) for d, c in self.current.items()}
        expected.update({f"snap:{n}:{d}": digest(c) for n, s in self.snaps.items()
                         for d, c in s.items()})
        assert states(self.scratch) == expected
        assert check_clean(self.scratch) == []
        svc = self.scratch.services()
        try:
            svc.sync()
            incremental = svc.view.dump()
            svc.view.rebuild()
            assert svc.view.dump() == incremental
        finally:
            svc.close()


ExternalTree.TestCase.settings = settings(
    max_examples=10, stateful_step_count=10, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_external_tree_follows_the_model = pytest.mark.slow(ExternalTree.TestCase)
