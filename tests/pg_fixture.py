"""Database fixtures for the storage and record tests: a PostgreSQL server, a workspace per backend.

The PostgreSQL server is started once per session from the Debian binaries
(``/usr/lib/postgresql/<version>/bin``): ``initdb`` into a temporary folder, listening
on a free loopback port with its unix socket in that folder, run as the ``postgres``
OS user when the tests run as root (the server refuses root), and stopped by
``pg_ctl stop`` (its pid file) at the end. Without the binaries the PostgreSQL
parameters are skipped — except under CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def _pg_bindir() -> Path | None:
    base = Path("/usr/lib/postgresql")
    if base.is_dir():
        versions = sorted(
            (d for d in base.iterdir() if (d / "bin" / "pg_ctl").exists()),
            key=lambda d: int(d.name) if d.name.isdigit() else 0,
        )
        if versions:
            return versions[-1] / "bin"
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unavailable(msg: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL needed under CI: {msg}")
    pytest.skip(msg)


class PgServer:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.tmp = Path(tempfile.mkdtemp(prefix="oncohybrid-pg-"))
        self.datadir = self.tmp / "data"
        self.port = _free_port()
        self.as_user: str | None = None
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                _unavailable("running as root and there is no 'postgres' OS user")
            self.as_user = "postgres"
            os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
        self.user = "oncohybrid"

    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_user:
            cmd = ["runuser", "-u", self.as_user, "--", *cmd]
        return cmd

    def start(self) -> None:
        subprocess.run(
            self._cmd(
                "initdb",
                "-D",
                str(self.datadir),
                "-U",
                self.user,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
            ),
            check=True,
            capture_output=True,
        )
        opts = (
            f"-p {self.port} -k {self.tmp} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        subprocess.run(
            self._cmd(
                "pg_ctl",
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(self.datadir),
                "-l",
                str(self.tmp / "server.log"),
                "-o",
                opts,
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        # pg_ctl stops the postmaster recorded in the data folder's pid file.
        subprocess.run(
            self._cmd("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.datadir)),
            capture_output=True,
        )
        shutil.rmtree(self.tmp, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.user, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bindir = _pg_bindir()
    if bindir is None:
        _unavailable("PostgreSQL server binaries (pg_ctl, initdb) not found")
    server = PgServer(bindir)
    try:
        server.start()
    except subprocess.CalledProcessError as exc:
        log = server.tmp / "server.log"
        detail = log.read_text() if log.exists() else exc.stderr.decode(errors="replace")
        server.stop()
        pytest.fail(f"PostgreSQL did not start: {detail[-2000:]}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def backend(request, tmp_path, monkeypatch) -> Iterator[str]:
    """A fresh workspace (tmp ``ONCOHYBRID_HOME``) on SQLite or on its own PostgreSQL db."""
    home = tmp_path / "home"
    monkeypatch.setenv("ONCOHYBRID_HOME", str(home))
    if request.param == "postgres":
        server = request.getfixturevalue("pg_server")
        monkeypatch.setenv("ONCOHYBRID_DATABASE_URL", server.create_database())
    else:
        monkeypatch.delenv("ONCOHYBRID_DATABASE_URL", raising=False)
    yield request.param
    from oncohybrid.store.db import dispose_engines

    with contextlib.suppress(Exception):
        dispose_engines()
