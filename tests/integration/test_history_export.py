"""History filters and exports, through the CLI on the scratch domain."""

from __future__ import annotations

import base64
import json

import msgpack
import pytest

from ledger.entries import entry_bytes
from ledger.merkle import leaf_hash
from tests.conftest import Scratch
from tests.scenario import play


def history(xlsnap, *args: str) -> list[dict]:
    run = xlsnap("history", "--json", *args)
    assert run.code == 0, run.err
    return json.loads(run.out)


def test_every_event_carries_actor_command_version_and_operation(scratch: Scratch,
                                                                  xlsnap) -> None:
    play(xlsnap)
    rows = history(xlsnap)
    assert [r["position"] for r in rows] == list(range(1, len(rows) + 1))
    for row in rows:
        actor = row["actor"]
        assert {"uid", "user", "sudo_user", "host", "pid", "argv", "version"} <= set(actor)
        assert row["operation_id"] and row["operation_kind"] in ("create", "revert", "delete")
    assert rows[0]["event"] == "Registered" and rows[0]["operation_id"] == rows[1]["operation_id"]


@pytest.mark.slow
def test_history_filters_by_kind_actor_domain_and_time(scratch: Scratch, xlsnap) -> None:
    play(xlsnap)
    everything = history(xlsnap)
    reverts = history(xlsnap, "--kind", "revert")
    assert reverts and {r["operation_kind"] for r in reverts} == {"revert"}
    assert {r["operation_id"] for r in reverts} == {
        r["operation_id"] for r in everything if r["operation_kind"] == "revert"}
    user = everything[0]["actor"]["user"]
    assert len(history(xlsnap, "--actor", user)) == len(everything)
    assert history(xlsnap, "--actor", "mallory") == []
    assert len(history(xlsnap, "web", "--since", "1h")) == len(everything)
    assert history(xlsnap, "--until", "1h") == []
    middle = everything[len(everything) // 2]["time"]
    since = history(xlsnap, "--since", f"@{middle}")
    until = history(xlsnap, "--until", f"@{middle}")
    assert since[0]["time"] >= middle and until[-1]["time"] <= middle
    assert len(since) + len(until) in (len(everything), len(everything) + 1)


def test_history_writes_json_lines_and_refuses_bad_times(scratch: Scratch, xlsnap) -> None:
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    lines = xlsnap("history", "--jsonl").out.splitlines()
    assert lines and all(json.loads(line)["position"] for line in lines)
    text = xlsnap("history", "--since", "2h").out
    assert "SnapshotTaken" in text
    run = xlsnap("history", "--since", "last tuesday")
    assert run.code == 2 and "invalid time" in run.err


def test_exports_carry_stored_bytes_positions_and_leaves(scratch: Scratch, xlsnap,
                                                        tmp_path) -> None:
    play(xlsnap)
    assert xlsnap("seal").code == 0
    out = tmp_path / "all.jsonl"
    run = xlsnap("export", "--format", "jsonl", "--out", str(out))
    assert run.code == 0, run.err
    header, *events, trailer = [json.loads(line) for line in out.read_text().splitlines()]
    assert header["type"] == "header" and len(header["tree_heads"]) == 1
    assert trailer == {"type": "end", "events": len(events)}
    for event in events:
        entry = entry_bytes(event["originator_id"], event["originator_version"],
                            event["topic"], base64.b64decode(event["state"]))
        assert leaf_hash(entry).hex() == event["leaf_hash"]
        assert event["actor"]["user"] and event["operation_kind"]
    raw = tmp_path / "all.msgpack"
    assert xlsnap("export", "--format", "msgpack", "--out", str(raw)).code == 0
    items = list(msgpack.Unpacker(open(raw, "rb"), raw=False))
    assert items[1]["state"] == base64.b64decode(events[0]["state"])


@pytest.mark.slow
@pytest.mark.sqlite_only  # moves the ledger file away
def test_exports_verify_without_the_database(scratch: Scratch, xlsnap, tmp_path) -> None:
    play(xlsnap)
    assert xlsnap("seal").code == 0
    full, part = tmp_path / "full.jsonl", tmp_path / "part.msgpack"
    assert xlsnap("export", "--out", str(full)).code == 0
    rows = history(xlsnap)
    middle = rows[len(rows) // 2]["time"]
    assert xlsnap("export", "--format", "msgpack", "--since", f"@{middle}",
                  "--out", str(part)).code == 0
    scratch.ledger.rename(scratch.ledger.with_suffix(".gone"))
    for path in (full, part):
        run = xlsnap("verify", "--export", str(path))
        assert run.code == 0, run.err
        assert "OK: export" in run.out
    assert not scratch.ledger.exists()

    lines = full.read_text().splitlines()
    tampered = json.loads(lines[7])
    tampered["data"] = {**tampered["data"], "step": 99}
    (tmp_path / "decoded.jsonl").write_text("\n".join(
        lines[:7] + [json.dumps(tampered)] + lines[8:]) + "\n")
    run = xlsnap("verify", "--export", str(tmp_path / "decoded.jsonl"))
    assert run.code == 3 and f"first bad position {tampered['position']}:" in run.err
    (tmp_path / "cut.jsonl").write_text("\n".join(lines[:20]) + "\n")
    run = xlsnap("verify", "--export", str(tmp_path / "cut.jsonl"))
    assert run.code == 3 and "first bad position 20:" in run.err
    state = json.loads(lines[5])
    raw = bytearray(base64.b64decode(state["state"]))
    raw[3] ^= 1
    state["state"] = base64.b64encode(bytes(raw)).decode()
    (tmp_path / "bytes.jsonl").write_text("\n".join(
        lines[:5] + [json.dumps(state)] + lines[6:]) + "\n")
    run = xlsnap("verify", "--export", str(tmp_path / "bytes.jsonl"))
    assert run.code == 3 and f"first bad position {state['position']}:" in run.err
