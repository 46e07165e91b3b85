"""A short real history on the scratch domain: creates, a revert, a branch, a delete."""

from __future__ import annotations

STEPS = (("snapshot-create", "-n", "s1", "web"), ("snapshot-create", "-n", "s2", "web"),
         ("snapshot-revert", "-n", "s1", "web"), ("snapshot-create", "-n", "s3", "web"),
         ("snapshot-delete", "-n", "s2", "web"))


def play(xlsnap) -> None:
    """Run the steps through the CLI; each must succeed."""
    for step in STEPS:
        run = xlsnap(*step)
        assert run.code == 0, (step, run.err)
