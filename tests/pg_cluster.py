"""A throw-away PostgreSQL cluster for tests: ``initdb`` into a temporary folder as an
unprivileged user (initdb refuses root), a UNIX socket in that folder and no TCP port,
started and stopped with ``pg_ctl``, removed at the end. Debian's ``postgresql`` package
provides the binaries (``/usr/lib/postgresql/<major>/bin``)."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

SUPERUSER = "xlsnap"


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder, or ``None``."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


class PgCluster:
    """One cluster; ``new_database`` gives each test its own database."""

    def __init__(self, bin_dir: Path, user: str = "nobody") -> None:
        self.bin = bin_dir
        entry = pwd.getpwnam(user)
        self.uid, self.gid = entry.pw_uid, entry.pw_gid
        self.root = Path(tempfile.mkdtemp(prefix="xlsnap-pg-"))
        os.chown(self.root, self.uid, self.gid)
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._names = itertools.count(1)

    def _as_owner(self, *argv: str, timeout: float = 120) -> None:
        subprocess.run(["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}",
                        "--clear-groups", *argv], check=True, capture_output=True,
                       timeout=timeout, cwd=self.root)

    def init(self) -> None:
        self._as_owner(str(self.bin / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                       "-A", "trust", "-E", "UTF8", "--no-sync")
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(f"listen_addresses = ''\nunix_socket_directories = '{self.root}'\n"
                       "fsync = off\nfull_page_writes = off\nmax_connections = 300\n")

    def start(self) -> None:
        self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                       "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w",
                       "-t", "60", "stop")

    def running(self) -> bool:
        return subprocess.run(["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}",
                               "--clear-groups", str(self.bin / "pg_ctl"), "-D",
                               str(self.data), "status"],
                              capture_output=True, timeout=30, cwd=self.root).returncode == 0

    def start_if_stopped(self) -> None:
        if not self.running():
            self.start()

    def reload(self) -> None:
        self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.data), "reload")

    def password_role(self, role: str, password: str) -> str:
        """A login role that must give ``password`` (scram-sha-256 on the socket: a line
        before the cluster's ``trust`` ones, for that role only), owning a new database
        of the same name; returns the database's URL, without the password."""
        with self.admin() as db:
            db.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)))
            db.execute(f'CREATE DATABASE "{role}" OWNER "{role}" TEMPLATE template0')
        hba = self.data / "pg_hba.conf"
        hba.write_text(f"local all {role} scram-sha-256\n" + hba.read_text())
        self.reload()
        return f"postgresql://{role}@/{role}?host={self.root}"

    def url(self, dbname: str) -> str:
        return f"postgresql://{SUPERUSER}@/{dbname}?host={self.root}"

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(dbname="postgres", user=SUPERUSER, host=str(self.root),
                               autocommit=True)

    def new_database(self) -> str:
        name = f"t{os.getpid()}_{next(self._names)}"
        with self.admin() as db:
            db.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def remove(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(self.root, ignore_errors=True)
