"""``cxbot serve`` starts the HTTP API on the given port for the project folder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")

pytestmark = pytest.mark.integration


def test_serve_answers_health_and_readiness(project: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "cxbot.cli", "serve", "--dir", str(project), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        ready = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(url + "/readyz", timeout=5)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        assert ready is not None and ready.status_code == 200, "not ready within 120 s"
        assert httpx.get(url + "/healthz").json() == {"status": "ok"}
        assert httpx.post(url + "/v1/sessions", json={}).status_code == 401
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode is not None, output
