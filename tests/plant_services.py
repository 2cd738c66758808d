"""Real plant services for tests and benchmarks: Debian's PostgreSQL, Mosquitto and nginx, each
started on free ports in a folder of its own and stopped afterwards.

CI installs the packages (.ci/run), so there a missing one fails the tests that need it; on a
developer's machine they are skipped with the install command. PostgreSQL refuses to run as
root, so as root the cluster runs as the ``postgres`` user the Debian package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from serving.server import free_port


def missing(what: str, install: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"no {what}: CI must run these tests (.ci/run installs it)")
    pytest.skip(f"no {what} ({install})")


def wait_port(port: int, timeout_s: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout_s:.0f} s")


# -- Mosquitto --------------------------------------------------------------------------------------
def sbin(name: str, what: str, package: str) -> str:
    """A Debian daemon's binary (in /usr/sbin, often off a user's PATH), or skip/fail saying how to get it."""
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if path is None:
        missing(what, f"apt-get install -y {package}")
    return str(path)


def mosquitto_binary() -> str:
    return sbin("mosquitto", "mosquitto broker", "mosquitto")


@contextmanager
def broker(folder: Path, port: int | None = None) -> Iterator[int]:
    """A Mosquitto broker on 127.0.0.1:PORT (anonymous, no persistence); yields the port."""
    port = port or free_port()
    conf = folder / f"mosquitto-{port}.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n")
    with listening([mosquitto_binary(), "-c", str(conf)], port):
        yield port


@contextmanager
def listening(cmd: list[str], port: int) -> Iterator[subprocess.Popen]:
    """``cmd`` running until the block ends, once something listens on ``port``."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, 10, proc)
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


# -- PostgreSQL -------------------------------------------------------------------------------------
def postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    path = found[-1] if found else shutil.which(name)
    if path is None:
        missing("PostgreSQL server", "apt-get install -y postgresql")
    return str(path)


@contextmanager
def postgres(*, durable: bool = False) -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (trust auth); yields its URL (database ``postgres``).
    ``durable``: fsync as in a plant (benchmarks); tests skip it for speed."""
    user = {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}
    root = Path(tempfile.mkdtemp(prefix="defectscope-pg-"))
    if user:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    data, port = root / "data", free_port()
    subprocess.run([postgres_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "defectscope", "--no-sync",
                    "-E", "UTF8", "--locale", "C"], check=True, capture_output=True, **user)
    opts = ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={root}", "-c", "max_connections=200"]
    if not durable:
        opts += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    log = open(root / "server.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([postgres_bin("postgres"), "-D", str(data), "-p", str(port), *opts],
                            stdout=log, stderr=subprocess.STDOUT, **user)
    try:
        _wait_ready(f"postgresql://defectscope@127.0.0.1:{port}/postgres", proc, root)
        yield f"postgresql://defectscope@127.0.0.1:{port}/postgres"
    finally:
        proc.terminate()  # smart shutdown: waits for clients; then fast
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(url: str, proc: subprocess.Popen, root: Path) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            psycopg.connect(url, connect_timeout=1).close()
            return
        except psycopg.OperationalError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start: {(root / 'server.log').read_text()[-2000:]}") from None
            time.sleep(0.1)


def fresh_database(server_url: str, name: str) -> str:
    """A new, empty database on the server; its URL."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


# -- nginx ------------------------------------------------------------------------------------------
def nginx_binary() -> str:
    return sbin("nginx", "nginx", "nginx-light")


@contextmanager
def nginx(conf_text: str, folder: Path, port: int) -> Iterator[int]:
    """nginx in the foreground with ``conf_text`` (a whole nginx.conf) in ``folder``; yields its port."""
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "nginx.conf"
    conf.write_text(conf_text)
    cmd = [nginx_binary(), "-p", str(folder), "-c", str(conf), "-e", str(folder / "error.log")]
    check = subprocess.run([*cmd, "-t"], capture_output=True, text=True)
    if check.returncode:
        raise RuntimeError(f"nginx refuses the configuration: {check.stderr}")
    with listening(cmd, port):
        yield port
