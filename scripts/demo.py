#!/usr/bin/env python3
"""Walk through every xlsnap command on a scratch domain made of two local qcow2 disks.

No Xen is needed: the domain is a stopped one, described by its xl.cfg file. Each command
is printed as it runs (``$ xlsnap ...``), followed by its output. Exits 1 if any step
that should succeed fails. Run it through ``scripts/demo.sh`` (which sets up .venv first),
or directly with a Python that has xlsnap installed: ``python scripts/demo.py [--keep]``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOMAIN = "demo"
UUID = "0b5e7c1a-3d2f-4e6a-9c8b-1f2e3d4c5b6a"
TIMEOUT = 120


class StepFailed(Exception):
    """A step ended with another exit code than the one it should have."""


class Demo:
    """The scratch folders, and how to run and show a command against them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.images = root / "images"
        self.config_dir = root / "xen"
        self.home = root / "state"
        for folder in (self.images, self.config_dir, self.home):
            folder.mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("XLSNAP_")}
        self.env.update(XLSNAP_HOME=str(self.home), XLSNAP_CONFIG_DIR=str(self.config_dir))
        installed = Path(sys.executable).parent / "xlsnap"
        self.xlsnap_argv = ([str(installed)] if installed.exists()
                            else [sys.executable, "-m", "commands"])

    def run(self, argv: list[str], shown: list[str], expect: int = 0) -> str:
        """Run ``argv`` (printed as ``shown``), print its output, check its exit code."""
        print(f"\n$ {shlex.join(shown)}", flush=True)
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env,
                              cwd=REPO, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                print(stream, end="" if stream.endswith("\n") else "\n")
        if proc.returncode != 0 or expect != 0:
            print(f"[exit code {proc.returncode}]")
        if proc.returncode != expect:
            raise StepFailed(f"{shlex.join(shown)} exited {proc.returncode}, expected {expect}")
        return proc.stdout

    def xlsnap(self, *args: str, expect: int = 0) -> str:
        return self.run([*self.xlsnap_argv, *args], ["xlsnap", *args], expect)

    def tool(self, *argv: str, expect: int = 0) -> str:
        """A qemu-img or qemu-io command, shown as typed."""
        return self.run(list(argv), list(argv), expect)

    def disk(self, letter: str) -> Path:
        return self.images / f"{letter}.qcow2"


def say(text: str) -> None:
    print(f"\n### {text}", flush=True)


def make_domain(demo: Demo) -> Path:
    """Two empty 64 MiB qcow2 disks and the domain's xl.cfg."""
    for letter in "ab":
        demo.tool("qemu-img", "create", "-q", "-f", "qcow2", str(demo.disk(letter)), "64M")
    config = demo.config_dir / f"{DOMAIN}.cfg"
    config.write_text(
        f'name = "{DOMAIN}"\nuuid = "{UUID}"\nmemory = 512\n'
        f"disk = [ '{demo.disk('a')},qcow2,xvda,rw',\n"
        f"         'format=qcow2, vdev=xvdb, access=rw, target={demo.disk('b')}' ]\n")
    print(f"\n{config}:\n{config.read_text()}", end="")
    return config


def walk_through(demo: Demo) -> None:
    say("A stopped domain with two qcow2 disks; xlsnap finds it as <config-dir>/demo.cfg")
    print(f"export XLSNAP_HOME={demo.home} XLSNAP_CONFIG_DIR={demo.config_dir}")
    config = make_domain(demo)
    disk_b = str(demo.disk("b"))
    pattern = ["qemu-io", "-f", "qcow2", "-c"]

    say("Internal snapshots: one with the default name (epoch seconds), one named with -n")
    demo.xlsnap("snapshot-create", DOMAIN)
    demo.xlsnap("snapshot-create", "-n", "clean", DOMAIN)

    say("The guest writes to xvdb (64 KiB of 0xab), then we take another snapshot")
    demo.tool(*pattern, "write -P 0xab 0 64k", disk_b)
    demo.xlsnap("snapshot-create", "-n", "after-write", DOMAIN)

    say("Listing: a table (* = current), the tree, one snapshot in full (libxl-json)")
    demo.xlsnap("snapshot-list", DOMAIN)
    demo.xlsnap("snapshot-list", "--tree", DOMAIN)
    demo.xlsnap("snapshot-list", "-l", DOMAIN, "clean")

    say("xvdb holds the 0xab bytes; after reverting to 'clean' it reads zeros again")
    demo.tool(*pattern, "read -P 0xab 0 64k", disk_b)
    demo.xlsnap("snapshot-revert", "-n", "clean", DOMAIN)
    demo.tool(*pattern, "read -P 0xab 0 64k", disk_b, expect=1)
    demo.tool(*pattern, "read -P 0 0 64k", disk_b)

    say("A snapshot taken after the revert starts a branch below 'clean'")
    demo.xlsnap("snapshot-create", "-n", "branch", DOMAIN)
    demo.xlsnap("snapshot-list", "--tree", DOMAIN)

    say("An external snapshot from a snapshot config file (xl.cfg syntax)")
    overlay = demo.images / "b-overlay.qcow2"
    snapcfg = demo.root / "external.cfg"
    snapcfg.write_text('name = "external-1"\n'
                       'description = "overlays on top of both disks"\n'
                       'type = "external"\n'
                       f"disk = [ 'xvdb={overlay},type=qcow2' ]\n")
    print(f"\n{snapcfg}:\n{snapcfg.read_text()}", end="")
    print("(type=\"external\" covers every disk: xvda, not listed, gets images/a.external-1.qcow2)")
    demo.xlsnap("snapshot-create", DOMAIN, str(snapcfg))
    print(f"\n{config} now points at the overlays (the old one is {config.name}.before-external-1):")
    print(config.read_text(), end="")
    demo.tool("qemu-img", "info", "--backing-chain", str(overlay))

    say("Delete the internal snapshot 'after-write': its qcow2 tags and metadata file go")
    demo.xlsnap("snapshot-delete", "-n", "after-write", DOMAIN)
    demo.xlsnap("snapshot-list", DOMAIN)
    demo.tool("qemu-img", "snapshot", "-l", disk_b)

    say("The operator's tree: leaves with their parents, one snapshot in full, a hold")
    demo.xlsnap("snapshot-list", "--leaves", "--parent", DOMAIN)
    demo.xlsnap("snapshot-info", DOMAIN, "clean")
    demo.xlsnap("snapshot-hold", DOMAIN, "clean", "audit-2026")
    demo.xlsnap("snapshot-delete", DOMAIN, "clean", expect=2)
    demo.xlsnap("prune", "--keep-last", "1", "--dry-run", DOMAIN)

    say("The ledger: every step, with the exact command it ran and who ran it")
    demo.xlsnap("history", DOMAIN)

    say("Forensics: the past replayed, what changed and who did it, a signed tree head")
    demo.xlsnap("history", DOMAIN, "--kind", "revert")
    demo.xlsnap("replay", DOMAIN, "--at-event", "20")
    demo.xlsnap("diff", DOMAIN, "--from-event", "0")
    head, proof = demo.root / "head.json", demo.root / "clean.proof.json"
    demo.xlsnap("seal", "--out", str(head))
    demo.xlsnap("verify", "--head", str(head))
    demo.xlsnap("prove", DOMAIN, "clean", "--out", str(proof))
    demo.xlsnap("verify-proof", str(proof), "--pubkey", str(demo.home / "seal.pub"))

    say("Bad input: one line on stderr, exit code 2, nothing changed")
    demo.xlsnap("snapshot-revert", "-n", "no-such-snapshot", DOMAIN, expect=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true",
                        help="keep the scratch folder (disks, configs, ledger) afterwards")
    args = parser.parse_args(argv)
    missing = [tool for tool in ("qemu-img", "qemu-io") if shutil.which(tool) is None]
    if missing:
        print(f"demo: {' and '.join(missing)} not found: run scripts/setup.sh (qemu-utils)",
              file=sys.stderr)
        return 1
    root = Path(tempfile.mkdtemp(prefix="xlsnap-demo-"))
    code = 0
    try:
        walk_through(Demo(root))
        print("\ndemo: every step did what it should")
    except (StepFailed, subprocess.TimeoutExpired, OSError) as exc:
        print(f"\ndemo: FAILED: {exc}", file=sys.stderr)
        code = 1
    finally:
        if args.keep:
            print(f"demo: kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
