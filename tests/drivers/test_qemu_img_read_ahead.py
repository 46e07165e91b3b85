"""``QemuImg.read_ahead``: several ``info -U`` at once, each answer used once, forgotten
after any write."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from commands.drivers.qemu_img import QemuImg, QemuImgError
from tests.conftest import requires_qemu_img

pytestmark = requires_qemu_img


class Counting(QemuImg):
    """The real driver, counting the qemu-img processes its ``_run`` starts."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[tuple[str, ...]] = []

    def _run(self, *args: str):  # type: ignore[no-untyped-def]
        self.runs.append(args)
        return super()._run(*args)


def _images(tmp_path: Path) -> list[str]:
    paths = [str(tmp_path / f"{n}.qcow2") for n in "ab"]
    for path in paths:
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path, "1M"], check=True)
    subprocess.run(["qemu-img", "snapshot", "-c", "t1", paths[0]], check=True)
    return paths


def test_an_answer_read_ahead_is_the_same_and_used_once(tmp_path: Path) -> None:
    a, b = _images(tmp_path)
    plain = QemuImg()
    expected = [plain.info(a, force_share=True), plain.info(b, force_share=True)]
    img = Counting()
    img.read_ahead([a, b])
    assert [img.info(a, force_share=True), img.info(b, force_share=True)] == expected
    assert img.runs == []
    assert img.info(a, force_share=True) == expected[0]    # a second read runs qemu-img
    assert len(img.runs) == 1


def test_a_write_forgets_what_was_read_ahead(tmp_path: Path) -> None:
    a, b = _images(tmp_path)
    img = Counting()
    img.read_ahead([a, b])
    img.snapshot_create(b, "t2")
    assert [t.name for t in img.info(b, force_share=True).tags] == ["t2"]
    assert img.runs[-1][0] == "info"


def test_a_failed_read_ahead_leaves_the_error_to_info(tmp_path: Path) -> None:
    a, _ = _images(tmp_path)
    missing = str(tmp_path / "missing.qcow2")
    img = Counting()
    img.read_ahead([a, missing])
    with pytest.raises(QemuImgError):
        img.info(missing, force_share=True)
    assert img.info(a, force_share=True).find("t1")
    assert [r[0] for r in img.runs] == ["info"]


def test_deleting_a_tag_that_is_gone_from_an_image_held_open_counts_as_done(
        tmp_path: Path) -> None:
    """A killed create's undo after the domain was started by hand (a qdisk backend holds
    the image, no lock): the tag never made is no obstacle; a tag still there is one."""
    from commands.engine.actions import _delete_tag_if_present

    a, _ = _images(tmp_path)
    with open(a, "r+b") as image:
        holder = subprocess.Popen(["sleep", "30"], stdout=image)
    try:
        img = QemuImg()
        result = _delete_tag_if_present(img, a, "never-made")
        assert result.ok and result.detail == {"absent": True}
        with pytest.raises(QemuImgError, match="has .* open"):
            _delete_tag_if_present(img, a, "t1")
    finally:
        holder.kill()
        holder.wait()
    assert [t.name for t in QemuImg().info(a).tags] == ["t1"]
    assert _delete_tag_if_present(QemuImg(), a, "t1").ok
    assert QemuImg().info(a).tags == ()
