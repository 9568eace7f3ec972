"""The real HTTP server on a free loopback port: uvicorn in a thread serving the app over an
assistant built on the test's ingested Northwind copy, with customer and agent keys from
the environment the assistant is given."""

from __future__ import annotations

import secrets
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from ruamel.yaml import YAML

from cxbot.assistant import Assistant
from cxbot.config import load_config
from cxbot.server.app import create_app

CUSTOMER_KEY_ENV = "CXBOT_TEST_CUSTOMER_KEY"
AGENT_KEY_ENV = "CXBOT_TEST_AGENT_KEY"


@dataclass(frozen=True)
class LiveServer:
    """A running server: its base URL and the secrets of its keys."""

    url: str
    customer_key: str
    agent_key: str
    bot: Assistant


def add_server_keys(project: Path, agent_queues: list[str]) -> None:
    """Give the project's cxbot.yaml a customer key and an agent key (secrets from env)."""
    yaml = YAML()
    path = project / "cxbot.yaml"
    data = yaml.load(path.read_text(encoding="utf-8"))
    server = data.setdefault("server", {})
    server["keys"] = [
        {"key_env": CUSTOMER_KEY_ENV, "role": "customer"},
        {"key_env": AGENT_KEY_ENV, "role": "agent", "queues": agent_queues},
    ]
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(data, handle)


def all_queues(project: Path) -> list[str]:
    """Every queue a conversation of the project can be in."""
    config = load_config(project, env={})
    queues = {config.server.default_queue, config.handoff.queue, *config.handoff.queues.values()}
    hours = config.handoff.hours
    if hours is not None and hours.after_hours_queue:
        queues.add(hours.after_hours_queue)
    return sorted(queues)


@pytest.fixture
def live_server(project: Path, make_bot: Callable[..., Assistant]) -> Iterator[LiveServer]:
    env = {
        CUSTOMER_KEY_ENV: "cust-" + secrets.token_urlsafe(16),
        AGENT_KEY_ENV: "agent-" + secrets.token_urlsafe(16),
        "CXBOT_SESSION_SECRET": secrets.token_urlsafe(32),
    }
    add_server_keys(project, all_queues(project))
    bot = make_bot(env=env)
    bot.warm_up()
    app = create_app(bot, env=env)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        ws="none",
        lifespan="on",
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            pytest.fail("the server did not answer /healthz within 30 s")
        time.sleep(0.05)
    try:
        yield LiveServer(url, env[CUSTOMER_KEY_ENV], env[AGENT_KEY_ENV], bot)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
