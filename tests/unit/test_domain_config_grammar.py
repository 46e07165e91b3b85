"""A domain's config read as xl reads it: numbers as names, nested lists, disk strings."""

from __future__ import annotations

from pathlib import Path

import pytest

from commands.config.domains import load_domain
from commands.errors import ConfigError


def write(tmp_path: Path, name: str, body: str) -> Path:
    (tmp_path / f"{name}.cfg").write_text(body, encoding="utf-8")
    return tmp_path


def test_a_domain_named_by_a_number_loads(tmp_path: Path) -> None:
    write(tmp_path, "1397207577", "name = 1397207577\ndisk = [ '/img/a.qcow2,qcow2,xvda,w' ]\n")
    domain = load_domain(tmp_path, "1397207577")
    assert domain.name == "1397207577"
    assert [d.spec.vdev for d in domain.disks] == ["xvda"]


def test_a_vnuma_domain_with_nested_lists_loads(tmp_path: Path) -> None:
    write(tmp_path, "numa", 'name = "numa"\nvnuma = [ [ "pnode=0", "size=512" ],\n'
                            '  [ "pnode=1", "size=512" ] ]\n'
                            "disk = [ 'vdev=xvda,format=qcow2,target=/img/n.qcow2' ]\n")
    assert [d.spec.target for d in load_domain(tmp_path, "numa").disks] == ["/img/n.qcow2"]


def test_a_disk_string_is_refused_saying_xl_attaches_no_disk(tmp_path: Path) -> None:
    write(tmp_path, "web", "name = 'web'\n\ndisk = '/img/web.qcow2,qcow2,xvda,w'\n")
    with pytest.raises(ConfigError) as info:
        load_domain(tmp_path, "web")
    assert str(info.value) == (
        f"{tmp_path}/web.cfg:3: 'disk' is a single string, not a list: xl attaches no disk "
        "from it (write disk = [ '...' ]): \"disk = '/img/web.qcow2,qcow2,xvda,w'\"")
