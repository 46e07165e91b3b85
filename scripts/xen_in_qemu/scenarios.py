"""xlsnap's Xen scenarios, run inside dom0 of a real Xen 4.17 against real xl and libxl.

Each scenario prints one line ``XLSNAP-TIER <name> PASS`` or ``XLSNAP-TIER <name> FAIL
<why>`` (the test on the host reads them from the serial console), then the commands'
output for diagnosis. Guest-visible content is checked with qemu-io (``-U``: qdisk
opens images with locking off) and, at the end, with ``qemu-img check`` once the
domains are gone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

IMAGES = Path("/var/lib/xen/images")
TIER = Path("/xlsnap-tier")


def sh(*argv: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)


def xlsnap(*args: str) -> subprocess.CompletedProcess[str]:
    return sh("xlsnap", *args)


def state(name: str) -> str:
    out = sh("xl", "list", name).stdout.splitlines()
    return out[1].split()[4] if len(out) > 1 else "gone"


def tags(path: Path) -> list[str]:
    info = json.loads(sh("qemu-img", "info", "-U", "--output=json", str(path)).stdout)
    return [s["name"] for s in info.get("snapshots", [])]


def pattern(path: Path, byte: int) -> str | None:
    """None when the first 64 KiB of ``path`` are all ``byte``, else what qemu-io said."""
    run = sh("qemu-io", "-r", "-U", "-f", "qcow2", "-c", f"read -P {byte} 0 64k", str(path))
    out = run.stdout + run.stderr
    ok = "Pattern verification failed" not in out and "read 65536" in out
    return None if ok else f"not {byte:#x}: {out.strip()[-200:]}"


def write(path: Path, byte: int) -> None:
    run = sh("qemu-io", "-f", "qcow2", "-c", f"write -P {byte} 0 64k", str(path))
    if run.returncode != 0 or "wrote 65536" not in run.stdout:
        raise RuntimeError(f"qemu-io write: {run.stdout} {run.stderr}")


def scenario(name: str, body: Callable[[], str | None]) -> bool:
    try:
        why = body()
    except Exception as exc:  # noqa: BLE001 - every failure is reported, none stops the run
        why = f"{type(exc).__name__}: {exc}"
    print(f"XLSNAP-TIER {name} {'PASS' if not why else 'FAIL ' + why}", flush=True)
    return not why


def expect(run: subprocess.CompletedProcess[str], what: str) -> str | None:
    if run.returncode != 0:
        return f"{what}: exit {run.returncode}: {run.stderr.strip()[-300:]}"
    return None


def make_guest(name: str, hvm: bool) -> Path:
    IMAGES.mkdir(parents=True, exist_ok=True)
    disk = IMAGES / f"{name}.qcow2"
    sh("qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M")
    write(disk, 0x11)
    if hvm:
        cfg = (f'name = "{name}"\ntype = "hvm"\nmemory = 64\nvcpus = 1\nboot = "c"\n'
               f'vnc = 0\nnographic = 1\nserial = "none"\n'
               f'disk = [ "{disk},qcow2,hda,rw" ]\n')
    else:
        cfg = (f'name = "{name}"\ntype = "pv"\nmemory = 128\nvcpus = 1\n'
               f'kernel = "{TIER / "vmlinuz"}"\nramdisk = "{TIER / "guest-initrd.gz"}"\n'
               f'extra = "console=hvc0"\ndisk = [ "{disk},qcow2,xvda,rw" ]\n')
    (Path("/etc/xen") / f"{name}.cfg").write_text(cfg)
    run = sh("xl", "create", f"/etc/xen/{name}.cfg", timeout=300)
    if run.returncode != 0:
        raise RuntimeError(f"xl create {name}: {run.stderr.strip()[-300:]}")
    time.sleep(5)
    return disk


def guest_scenarios(name: str, hvm: bool) -> None:
    disk = make_guest(name, hvm)
    print(sh("xl", "list").stdout, flush=True)
    vdev = "hda" if hvm else "xvda"

    def libxl_shape() -> str | None:
        """What the fake xl and the test device model assume (tests/fakes/xl)."""
        from commands.drivers.qmp import Qmp

        listed = json.loads(sh("xl", "list", "-l", name).stdout)[0]
        if "backend" in listed["config"]["disks"][0]:
            return f"xl list -l shows a backend: {listed['config']['disks'][0]}"
        domid = listed["domid"]
        blocks = Qmp(f"/var/run/xen/qmp-libxl-{domid}").execute("query-block")
        print(json.dumps(blocks)[:1500], flush=True)
        nodes = {(b.get("device"), (b.get("inserted") or {}).get("node-name")) for b in blocks
                 if b.get("inserted")}
        if ("", f"{vdev}-qcow2") not in nodes:
            return f"no anonymous qdisk node {vdev}-qcow2: {sorted(nodes)}"
        if hvm and not any(d == "ide0-hd0" for d, _ in nodes):
            return f"no emulated ide0-hd0: {sorted(nodes)}"
        return None

    scenario(f"{name}-libxl-shape", libxl_shape)

    def disk_only() -> str | None:
        run = xlsnap("--toolstack", "xen", "snapshot-create", "--disk-only", "-n", "d1", name)
        return expect(run, "snapshot-create --disk-only") or (
            None if tags(disk) == ["d1"] else f"tags {tags(disk)}")

    def with_memory() -> str | None:
        run = xlsnap("--toolstack", "xen", "snapshot-create", "-n", "m1", name)
        if (why := expect(run, "snapshot-create")) is not None:
            return why
        if tags(disk) != ["d1", "m1"]:
            return f"tags {tags(disk)}"
        if (why := pattern(disk, 0x11)) is not None:
            return why
        return None if state(name)[:2] in ("r-", "-b", "--") else f"state {state(name)}"

    def listed() -> str | None:
        run = xlsnap("--toolstack", "xen", "snapshot-list", "--json", name)
        if (why := expect(run, "snapshot-list")) is not None:
            return why
        names = [r["name"] for r in json.loads(run.stdout)]
        return None if names == ["d1", "m1"] else f"listed {names}"

    def revert() -> str | None:
        run = xlsnap("--toolstack", "xen", "snapshot-revert", "-n", "m1", name)
        if (why := expect(run, "snapshot-revert")) is not None:
            return why
        if tags(disk) != ["d1", "m1"]:
            return f"tags after revert {tags(disk)}"
        if state(name)[:2] not in ("r-", "-b", "--"):
            return f"state after revert {state(name)}"
        return pattern(disk, 0x11)

    def delete() -> str | None:
        run = xlsnap("--toolstack", "xen", "snapshot-delete", "-n", "d1", name)
        return expect(run, "snapshot-delete") or (
            None if tags(disk) == ["m1"] else f"tags after delete {tags(disk)}")

    def checked() -> str | None:
        run = xlsnap("--toolstack", "xen", "check", name)
        if (why := expect(run, "check")) is not None:
            return why
        sh("xl", "destroy", name)
        time.sleep(5)
        image = sh("qemu-img", "check", str(disk))
        return None if image.returncode == 0 else f"qemu-img check: {image.stdout[-300:]}"

    for label, body in [("disk-only", disk_only), ("memory", with_memory), ("list", listed),
                        ("revert", revert), ("delete", delete)]:
        scenario(f"{name}-{label}", body)
    if hvm:
        xl_facts(name)
    scenario(f"{name}-check", checked)


def domid(name: str) -> int:
    return int(sh("xl", "domid", name).stdout.strip())


def dm_status(name: str) -> str:
    from commands.drivers.qmp import Qmp

    return str(Qmp(f"/var/run/xen/qmp-libxl-{domid(name)}").execute("query-status")["status"])


def xl_facts(name: str) -> None:
    """What the fake xl (tests/fakes/xl) models, checked once against real xl."""
    import glob

    from commands.device_model import socket_process

    saved = Path("/tmp/facts.save")

    def lock_file() -> str | None:
        found = glob.glob(f"/var/lib/xen/userdata-l.{domid(name)}.*.qmp-socket-lock")
        return None if found else "no qmp-socket-lock file in /var/lib/xen"

    def save_p_pauses_then_unpause_runs_the_device_model() -> str | None:
        if (why := expect(sh("xl", "save", "-p", name, str(saved)), "xl save -p")):
            return why
        paused, during = state(name), dm_status(name)
        sh("xl", "unpause", name)
        after = dm_status(name)
        print(f"facts: after save -p: {paused}, device model {during}; after unpause: "
              f"{state(name)}, device model {after}", flush=True)
        return None if paused[2] == "p" and after == "running" else "see facts line"

    def destroy_does_not_wait_and_restore_gets_a_new_domid() -> str | None:
        old = domid(name)
        dm = socket_process(f"/var/run/xen/qmp-libxl-{old}")
        sh("xl", "destroy", name)
        alive = dm is not None and Path(f"/proc/{dm[0]}").exists()
        start = time.monotonic()
        while dm is not None and Path(f"/proc/{dm[0]}").exists() and time.monotonic() - start < 30:
            time.sleep(0.05)
        print(f"facts: device model pid {dm and dm[0]} alive when xl destroy returned: {alive}; "
              f"gone {time.monotonic() - start:.2f}s later", flush=True)
        if (why := expect(sh("xl", "restore", "-p", str(saved), timeout=600), "xl restore -p")):
            return why
        new = domid(name)
        print(f"facts: restored as domid {new} (was {old}); device model {dm_status(name)}",
              flush=True)
        sh("xl", "unpause", name)
        return None if new != old else "same domid"

    def save_without_p_destroys() -> str | None:
        saved.unlink()
        if (why := expect(sh("xl", "save", name, str(saved)), "xl save")):
            return why
        gone = state(name) == "gone"
        if expect(sh("xl", "restore", str(saved), timeout=600), "xl restore"):
            return "restore after save failed"
        return None if gone else "the domain is still there after xl save"

    def not_root() -> str | None:
        run = sh("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "xl", "list")
        print(f"facts: xl as nobody: exit {run.returncode}: {run.stderr.strip()[-300:]}",
              flush=True)
        return None if "Could not obtain handle on privileged command interface" in run.stderr \
            else "other message"

    for label, body in [("lock-file", lock_file),
                        ("save-p", save_p_pauses_then_unpause_runs_the_device_model),
                        ("destroy-restore", destroy_does_not_wait_and_restore_gets_a_new_domid),
                        ("save-destroys", save_without_p_destroys), ("not-root", not_root)]:
        scenario(f"fact-{label}", body)


def main() -> int:
    print(sh("xl", "info").stdout[:400], flush=True)
    scenario("xlsnap-installed", lambda: expect(xlsnap("--help"), "xlsnap --help"))
    guest_scenarios("pv", hvm=False)
    if "--no-hvm" not in sys.argv:
        guest_scenarios("hvm", hvm=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
