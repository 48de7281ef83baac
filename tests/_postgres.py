"""A private PostgreSQL server on 127.0.0.1 for tests (Debian's postgresql package; started and stopped here)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator, Optional

URL_ENV = "EDGETUNE_TEST_POSTGRES"  # an existing server's URL wins over starting one


def _bin_dir() -> Optional[Path]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_owner(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; as root, run it as the postgres system user.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def why_unavailable() -> Optional[str]:
    if os.environ.get(URL_ENV):
        return None
    if _bin_dir() is None:
        return "PostgreSQL is not installed (apt-get install postgresql; tools/setup-system.sh does it as root)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser"
    return None


def postgres_server() -> Iterator[str]:
    """Yield a postgresql:// URL of a fresh database; the server is stopped and its files removed afterwards."""
    if os.environ.get(URL_ENV):
        yield os.environ[URL_ENV]
        return
    import tempfile

    # not under pytest's tmp folders: they are private to root and the postgres user must reach its data
    base = Path(tempfile.mkdtemp(prefix="edgetune-pg-"))
    try:
        yield from _serve(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _serve(base: Path) -> Iterator[str]:
    bindir = _bin_dir()
    assert bindir is not None
    data = base / "pgdata"
    data.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(data, "postgres")
    port = _free_port()
    subprocess.run(_as_owner([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
                   check=True, capture_output=True)
    log = base / "postgres.log"
    if os.geteuid() == 0:
        log.touch()
        shutil.chown(log, "postgres")
    subprocess.run(_as_owner([
        str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
        "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off", "start",
    ]), check=True, capture_output=True)
    try:
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        deadline = time.time() + 30
        while time.time() < deadline:
            ready = subprocess.run([str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True)
            if ready.returncode == 0:
                break
            time.sleep(0.2)
        yield url
    finally:
        subprocess.run(_as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
