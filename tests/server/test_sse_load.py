"""Bounded load: 100 concurrent clients stream replies for 30 s from a real uvicorn server on
loopback (offline assistant, each client in its own conversation); no request may fail.
Prints p50/p95 time to the final event and the throughput."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from ruamel.yaml import YAML

pytest.importorskip("fastapi", reason="the server extra is not installed")

from cxbot.assistant import Assistant
from cxbot.server import create_app

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CLIENTS = 100
SECONDS = 30.0
QUESTIONS = (
    "How do I report a lost card?",
    "How much does an international SWIFT payment cost?",
    "What is the fee for an unarranged overdraft?",
    "How do I freeze my card?",
    "What are your branch opening hours?",
)


async def client_loop(
    client: httpx.AsyncClient,
    key: str,
    index: int,
    until: float,
    latencies: list[float],
    errors: list[str],
) -> None:
    try:
        opened = await client.post(
            "/v1/sessions", json={}, headers={"Authorization": f"Bearer {key}"}
        )
        opened.raise_for_status()
        session = opened.json()
        cid, headers = session["conversation_id"], {"Authorization": f"Bearer {session['token']}"}
        turn = 0
        while time.monotonic() < until:
            text = QUESTIONS[(index + turn) % len(QUESTIONS)]
            turn += 1
            started = time.monotonic()
            deltas: list[str] = []
            final = None
            event = ""
            async with client.stream(
                "POST",
                f"/v1/conversations/{cid}/messages/stream",
                json={"text": text},
                headers=headers,
            ) as response:
                if response.status_code != 200:
                    errors.append(f"{cid}: HTTP {response.status_code}")
                    return
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        event = line[len("event: ") :]
                    elif line.startswith("data: "):
                        data = json.loads(line[len("data: ") :])
                        if event == "delta":
                            deltas.append(data["text"])
                        elif event == "final":
                            final = data
            if final is None or "".join(deltas) != final["reply"]["text"]:
                errors.append(f"{cid}: turn {turn} ended without a matching final event")
                return
            latencies.append(time.monotonic() - started)
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        errors.append(f"client {index}: {type(exc).__name__}: {exc}")


def test_a_hundred_streaming_clients_for_thirty_seconds(
    project: Path, make_bot: Callable[..., Assistant], capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    yaml = YAML()
    path = project / "cxbot.yaml"
    data = yaml.load(path.read_text(encoding="utf-8"))
    data["server"] = {"keys": [{"key_env": "LOAD_CUSTOMER", "role": "customer"}]}
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(data, handle)
    env = {
        "LOAD_CUSTOMER": secrets.token_urlsafe(16),
        "CXBOT_SESSION_SECRET": secrets.token_urlsafe(32),
    }
    bot = make_bot(env=env)
    app = create_app(bot, env=env)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_level="warning", lifespan="on", backlog=512, timeout_graceful_shutdown=5
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert thread.is_alive() and time.monotonic() < deadline, "server not ready"
            time.sleep(0.1)

        latencies: list[float] = []
        errors: list[str] = []

        async def run() -> float:
            limits = httpx.Limits(max_connections=CLIENTS + 10, max_keepalive_connections=CLIENTS)
            async with httpx.AsyncClient(
                base_url=url, limits=limits, timeout=httpx.Timeout(180)
            ) as client:
                started = time.monotonic()
                until = started + SECONDS
                await asyncio.gather(
                    *(
                        client_loop(client, env["LOAD_CUSTOMER"], i, until, latencies, errors)
                        for i in range(CLIENTS)
                    )
                )
                return time.monotonic() - started

        elapsed = asyncio.run(run())
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()

    assert errors == []
    assert len(latencies) >= CLIENTS  # every client finished at least one streamed turn
    cuts = statistics.quantiles(latencies, n=100)
    with capsys.disabled():
        print(
            f"\nSSE load: {CLIENTS} clients, {len(latencies)} streamed turns in {elapsed:.1f} s "
            f"({len(latencies) / elapsed:.1f} turns/s); time to final event "
            f"p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {cuts[94] * 1000:.0f} ms"
        )
