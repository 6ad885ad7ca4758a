"""A private PostgreSQL: the `pgserver` wheel's binaries, our own data directory.

PostgreSQL refuses to run as root. As root, the server runs as a dedicated system user
that owns only its data directory (we never loosen permissions anywhere else). It listens
on a unix socket inside its own directory — never on a TCP port another server might hold —
unless a TCP port is asked for.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from . import processes

SERVICE_USER = "motionledger"
SOCKET_PORT = 5432  # names the socket file only; no TCP port is opened by default
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes with the file name


def postgres_bin_dir() -> Path:
    """The pgserver wheel's PostgreSQL, else the machine's (`pg_config --bindir`)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "pginstall" / "bin"
            if (candidate / "postgres").is_file():
                return candidate
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip())
        if (candidate / "postgres").is_file():
            return candidate
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "postgres").is_file():
            return candidate
    raise FileNotFoundError("no PostgreSQL binaries: `pip install pgserver`")


def service_user() -> pwd.struct_passwd | None:
    """None when not root; else the system user the server runs as (created if missing)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(SERVICE_USER)


class PostgresProcess:
    def __init__(
        self, data_dir: Path, *, tcp_port: int | None = None, database: str = "motionledger"
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.tcp_port = tcp_port
        self.database = database
        self.bin = postgres_bin_dir()
        self.user = service_user()
        self.process: subprocess.Popen[bytes] | None = None
        self.socket_dir = self._socket_dir()

    def _socket_dir(self) -> Path:
        inside = self.data_dir / "run"
        if len(str(inside)) + len("/.s.PGSQL.5432") <= _MAX_SOCKET_PATH:
            return inside
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"motionledger-pg-{digest}"

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "data"

    def dsn(self, database: str | None = None) -> str:
        db = database or self.database
        if self.tcp_port is not None:
            return f"postgresql://postgres@127.0.0.1:{self.tcp_port}/{db}"
        return f"postgresql://postgres@/{db}?host={self.socket_dir}&port={SOCKET_PORT}"

    def _own(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            os.chown(path, self.user.pw_uid, self.user.pw_gid)
        path.chmod(0o700)

    def _run(self, *argv: str) -> None:
        result = subprocess.run(
            argv,
            capture_output=True,
            preexec_fn=processes.preexec(self.user, signal.SIGTERM),
            check=False,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace")
            raise RuntimeError(f"{Path(argv[0]).name} failed ({result.returncode}): {output}")

    def initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").is_file()

    def _init(self) -> None:
        self._own(self.data_dir)
        self._own(self.pgdata)
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.pgdata),
            "--username=postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        )

    def _clear_stale_pid(self) -> None:
        """A postmaster.pid left by a killed server: remove it, or stop an orphan."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return
        if processes.pid_alive(pid) and processes.process_name(pid) in ("postgres", "postmaster"):
            os.kill(pid, signal.SIGINT)  # an orphan of ours: shut it down cleanly
            deadline = time.monotonic() + 30
            while processes.pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
        if not processes.pid_alive(pid):
            with contextlib.suppress(FileNotFoundError):
                pid_file.unlink()

    def start(self, timeout: float = 60) -> str:
        if not self.initialised():
            self._init()
        self._own(self.socket_dir)
        self._clear_stale_pid()
        listen = "127.0.0.1" if self.tcp_port is not None else ""
        argv = [
            str(self.bin / "postgres"),
            "-D",
            str(self.pgdata),
            "-p",
            str(self.tcp_port or SOCKET_PORT),
            "-k",
            str(self.socket_dir),
            "-c",
            f"listen_addresses={listen}",
            "-c",
            "unix_socket_permissions=0777",
        ]
        # SIGINT on our death: a fast, clean shutdown of the postmaster and its backends
        self.process = processes.spawn(
            argv,
            log_path=self.data_dir / "postgres.log",
            user=self.user,
            death_signal=signal.SIGINT,
        )
        self._wait_ready(timeout)
        self._ensure_database()
        return self.dsn()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        isready = str(self.bin / "pg_isready")
        host = "127.0.0.1" if self.tcp_port is not None else str(self.socket_dir)
        port = str(self.tcp_port or SOCKET_PORT)
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                log = (self.data_dir / "postgres.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"PostgreSQL exited while starting:\n{log}")
            probe = subprocess.run(
                [isready, "-q", "-h", host, "-p", port, "-U", "postgres"], check=False
            )
            if probe.returncode == 0:
                return
            time.sleep(0.1)
        raise TimeoutError(f"PostgreSQL not ready after {timeout}s")

    def _ensure_database(self) -> None:
        psql = str(self.bin / "psql")
        host = "127.0.0.1" if self.tcp_port is not None else str(self.socket_dir)
        port = str(self.tcp_port or SOCKET_PORT)
        base = [psql, "-h", host, "-p", port, "-U", "postgres", "-d", "postgres", "-Atq", "-c"]
        found = subprocess.run(
            [*base, f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"],
            capture_output=True,
            text=True,
            check=True,
        )
        if found.stdout.strip() != "1":
            subprocess.run([*base, f'CREATE DATABASE "{self.database}"'], check=True)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 30) -> None:
        if self.process is not None:
            processes.stop(self.process, signal.SIGINT, timeout)

    def kill(self) -> None:
        if self.process is not None:
            processes.stop(self.process, signal.SIGKILL)

    def externally_running(self) -> bool:
        """A postmaster (ours, from another process) is serving this data directory."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return False
        return processes.pid_alive(pid) and processes.process_name(pid) in (
            "postgres",
            "postmaster",
        )
