"""Local servers on free loopback ports for tests and ``cxbot bench load``: Debian's
``redis-server`` and a Chroma server (``chroma run``), each started as a child process,
waited for, and stopped (terminate, then kill) when the ``with`` block ends.

Redis runs without persistence (``--save '' --appendonly no``); Chroma keeps its data in
the folder given.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from cxbot.errors import BackendError

__all__ = ["ChromaServer", "RedisServer", "free_port", "redis_server_binary"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str | None:
    """Path of ``redis-server`` (``apt-get install redis-server``), or None."""
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").is_file() else None
    )


class _Process:
    """A child process serving on ``port``; subclasses say how to start and probe it."""

    name = "server"

    def __init__(self, log: Path | None, timeout_s: float) -> None:
        self.port = free_port()
        self.timeout_s = timeout_s
        self._log_path = log
        self._process: subprocess.Popen[bytes] | None = None

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    def _ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        out = self._log_path.open("ab") if self._log_path else subprocess.DEVNULL
        try:
            self._process = subprocess.Popen(
                self._command(), stdout=out, stderr=subprocess.STDOUT, env=self._env()
            )
        finally:
            if self._log_path:
                out.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + self.timeout_s
        while not self._ready():
            if self._process.poll() is not None:
                raise BackendError(
                    f"{self.name} exited with status {self._process.returncode} "
                    f"(log: {self._log_path})"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise BackendError(f"{self.name} did not answer within {self.timeout_s:.0f} s")
            time.sleep(0.05)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> _Process:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class RedisServer(_Process):
    """``redis-server`` on 127.0.0.1, in memory only."""

    name = "redis-server"

    def __init__(self, *, log: Path | None = None, timeout_s: float = 20.0) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise BackendError("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        super().__init__(log, timeout_s)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _command(self) -> list[str]:
        return [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ]

    def _ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def __enter__(self) -> RedisServer:
        self.start()
        return self


class ChromaServer(_Process):
    """``chroma run`` (from the chromadb package beside this Python) on 127.0.0.1."""

    name = "chroma run"

    def __init__(self, path: Path, *, log: Path | None = None, timeout_s: float = 90.0) -> None:
        self.path = Path(path)
        self.binary = str(Path(sys.executable).parent / "chroma")
        if not Path(self.binary).is_file():
            self.binary = shutil.which("chroma") or self.binary
        super().__init__(log, timeout_s)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        return [
            self.binary,
            "run",
            "--path",
            str(self.path),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]

    def _env(self) -> dict[str, str]:
        return {**os.environ, "ANONYMIZED_TELEMETRY": "False"}

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=1):
                return True
        except OSError:
            return False

    def __enter__(self) -> ChromaServer:
        self.start()
        return self
