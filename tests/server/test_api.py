"""The HTTP API over a real assistant on the ingested Northwind copy: FastAPI's TestClient
for request/response routes, a real uvicorn server on loopback for the assist event stream."""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from ruamel.yaml import YAML

pytest.importorskip("fastapi", reason="the server extra is not installed")

from fastapi import FastAPI
from fastapi.testclient import TestClient

from cxbot.assistant import Assistant
from cxbot.config import load_config
from cxbot.errors import ConfigError
from cxbot.server import create_app

GENERAL = "general"
CARE = "customer-care"


@dataclass(frozen=True)
class Keys:
    customer: str
    agent: str
    """An agent of the default queue (conversations the assistant still handles)."""
    care_agent: str
    """An agent of the handoff queue."""
    supervisor: str
    admin: str


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def configure(project: Path) -> tuple[Keys, dict[str, str]]:
    """Server keys in the project's cxbot.yaml, their secrets in the returned environment."""
    yaml = YAML()
    path = project / "cxbot.yaml"
    data = yaml.load(path.read_text(encoding="utf-8"))
    data["server"] = {
        "default_queue": GENERAL,
        "keys": [
            {"key_env": "T_CUSTOMER", "role": "customer"},
            {"key_env": "T_AGENT", "role": "agent", "queues": [GENERAL]},
            {"key_env": "T_CARE", "role": "agent", "queues": [CARE]},
            {"key_env": "T_SUPERVISOR", "role": "supervisor"},
            {"key_env": "T_ADMIN", "role": "admin"},
        ],
    }
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(data, handle)
    env = {
        name: f"{name.lower()}-{secrets.token_urlsafe(12)}"
        for name in ("T_CUSTOMER", "T_AGENT", "T_CARE", "T_SUPERVISOR", "T_ADMIN")
    }
    env["CXBOT_SESSION_SECRET"] = secrets.token_urlsafe(32)
    keys = Keys(
        env["T_CUSTOMER"], env["T_AGENT"], env["T_CARE"], env["T_SUPERVISOR"], env["T_ADMIN"]
    )
    return keys, env


@dataclass
class Api:
    client: TestClient
    keys: Keys
    bot: Assistant
    app: FastAPI

    def session(self, customer_id: str | None = None) -> tuple[str, dict[str, str]]:
        body = {"customer_id": customer_id} if customer_id else {}
        response = self.client.post("/v1/sessions", json=body, headers=auth(self.keys.customer))
        assert response.status_code == 200, response.text
        data = response.json()
        return data["conversation_id"], auth(data["token"])

    def say(self, cid: str, headers: dict[str, str], text: str) -> dict[str, Any]:
        response = self.client.post(
            f"/v1/conversations/{cid}/messages", json={"text": text}, headers=headers
        )
        assert response.status_code == 200, response.text
        reply: dict[str, Any] = response.json()
        return reply


def get(client: TestClient, path: str, key: str) -> int:
    """The status of a GET with ``key``."""
    return client.get(path, headers=auth(key)).status_code


def wait_ready(get: Callable[[str], httpx.Response]) -> None:
    deadline = time.monotonic() + 60
    while get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "not ready within 60 s"
        time.sleep(0.05)


@pytest.fixture
def made(project: Path, make_bot: Callable[..., Assistant]) -> tuple[FastAPI, Keys, Assistant]:
    keys, env = configure(project)
    bot = make_bot(env=env)
    return create_app(bot, env=env, heartbeat_s=0.2), keys, bot


@pytest.fixture
def api(made: tuple[FastAPI, Keys, Assistant]) -> Iterator[Api]:
    app, keys, bot = made
    with TestClient(app) as client:
        wait_ready(client.get)
        yield Api(client, keys, bot, app)


def sse(text: str) -> list[tuple[str, Any]]:
    """(event, data) of a text/event-stream body; comments as ("", comment)."""
    events: list[tuple[str, Any]] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name, data = "", None
        for line in block.splitlines():
            if line.startswith(":"):
                events.append(("", line[1:].strip()))
            elif line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: ") :])
        if name:
            events.append((name, data))
    return events


# -- health and schema -----------------------------------------------------------------------
def test_health_needs_no_key_and_readiness_waits_for_warm_up(
    made: tuple[FastAPI, Keys, Assistant],
) -> None:
    app = made[0]
    cold = TestClient(app)  # no lifespan: the assistant is never warmed up
    assert cold.get("/healthz").json() == {"status": "ok"}
    assert cold.get("/readyz").status_code == 503
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        wait_ready(client.get)
        assert client.get("/readyz").json() == {"status": "ready"}


def test_openapi_schema_lists_every_route(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    paths = schema["paths"]
    expected = {
        "/healthz": "get",
        "/readyz": "get",
        "/v1/sessions": "post",
        "/v1/conversations": "get",
        "/v1/conversations/{cid}/messages": "post",
        "/v1/conversations/{cid}/messages/stream": "post",
        "/v1/conversations/{cid}/summary": "get",
        "/v1/conversations/{cid}/assist": "get",
        "/v1/conversations/{cid}/events": "get",
        "/v1/conversations/{cid}/observe": "post",
        "/v1/admin/ingest": "post",
    }
    for path, method in expected.items():
        assert method in paths[path], path
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


# -- authentication and roles ----------------------------------------------------------------
def test_keys_tokens_and_roles(api: Api) -> None:
    client, keys = api.client, api.keys
    response = client.post("/v1/sessions", json={})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert client.post("/v1/sessions", json={}, headers=auth("nope")).status_code == 401
    basic = {"Authorization": "Basic eDp5"}
    assert client.post("/v1/sessions", json={}, headers=basic).status_code == 401
    for key in (keys.agent, keys.supervisor, keys.admin):
        assert client.post("/v1/sessions", json={}, headers=auth(key)).status_code == 403

    cid, mine = api.session()
    other, _ = api.session()
    assert cid != other
    token = mine["Authorization"].split()[1]
    head, payload, signature = token.split(".")
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
    for bad in (f"{head}.{forged}.{signature}", f"{head}.{payload}.{signature[::-1]}"):
        response = client.post(
            f"/v1/conversations/{cid}/messages", json={"text": "hello"}, headers=auth(bad)
        )
        assert response.status_code == 401
    # a session token is good for its own conversation only
    response = client.post(f"/v1/conversations/{other}/messages", json={"text": "hi"}, headers=mine)
    assert response.status_code == 403
    assert client.get(f"/v1/conversations/{cid}/assist", headers=mine).status_code == 403
    assert client.get("/v1/conversations", headers=mine).status_code == 403
    # only customers talk; supervisors only read; admins only administer
    response = client.post(
        f"/v1/conversations/{cid}/messages", json={"text": "hi"}, headers=auth(keys.agent)
    )
    assert response.status_code == 403
    observe = {"speaker": "agent", "text": "Hello, I'm Sam."}
    response = client.post(
        f"/v1/conversations/{cid}/observe", json=observe, headers=auth(keys.supervisor)
    )
    assert response.status_code == 403
    assert get(client, f"/v1/conversations/{cid}/assist", keys.admin) == 403
    assert client.post("/v1/admin/ingest", headers=auth(keys.supervisor)).status_code == 403
    # a conversation the assistant handles sits in the default queue
    assert get(client, f"/v1/conversations/{cid}/assist", keys.care_agent) == 403
    assert get(client, f"/v1/conversations/{cid}/summary", keys.care_agent) == 403
    assert get(client, f"/v1/conversations/{cid}/summary", keys.agent) == 200
    for route in ("summary", "assist", "events"):
        response = client.get(f"/v1/conversations/nope/{route}", headers=auth(keys.supervisor))
        assert response.status_code == 404, route


def test_sessions_bind_a_known_customer(api: Api) -> None:
    client, keys = api.client, api.keys
    response = client.post(
        "/v1/sessions", json={"customer_id": "C-9999"}, headers=auth(keys.customer)
    )
    assert response.status_code == 422
    assert "C-9999" in response.json()["detail"]
    cid, headers = api.session("C-1001")
    assert api.bot.state(cid).customer_id == "C-1001"
    response = client.post(
        f"/v1/conversations/{cid}/messages",
        json={"text": "What is my card status?", "customer_id": "C-1002"},
        headers=headers,
    )
    assert response.status_code == 403


# -- customer messages -----------------------------------------------------------------------
def test_a_message_round_trip_returns_a_cited_answer(api: Api) -> None:
    cid, headers = api.session()
    reply = api.say(cid, headers, "How much does an international SWIFT payment cost?")
    assert reply["route"] == "rag"
    assert reply["handoff"] is None
    assert reply["citations"], reply
    first = reply["citations"][0]
    assert set(first) == {"source", "title", "snippet", "score"}
    assert first["source"].startswith("transfers/")
    assert 0 < first["score"] <= 1
    assert first["title"] and first["snippet"]
    assert [text for who, text in api.bot.state(cid).history] == [
        "How much does an international SWIFT payment cost?",
        reply["text"],
    ]


def test_bad_input_is_422_with_the_reason(api: Api) -> None:
    cid, headers = api.session()
    url = f"/v1/conversations/{cid}/messages"
    response = api.client.post(url, json={"text": "   "}, headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"] == "the message is empty"
    response = api.client.post(url, json={}, headers=headers)
    assert response.status_code == 422 and "text" in response.json()["detail"]
    response = api.client.post(url, json={"text": "hi", "mood": "grumpy"}, headers=headers)
    assert response.status_code == 422 and "mood" in response.json()["detail"]
    response = api.client.post(url, json={"text": "hi", "customer_id": "C-404"}, headers=headers)
    assert response.status_code == 422 and "C-404" in response.json()["detail"]
    assert api.bot.events(cid) == []  # nothing stored for a rejected turn


def test_bodies_over_the_limit_are_413_with_or_without_a_length(api: Api) -> None:
    cid, headers = api.session()
    url = f"/v1/conversations/{cid}/messages"
    big = json.dumps({"text": "a" * 17000}).encode()
    response = api.client.post(
        url, content=big, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 413

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    response = api.client.post(
        url, content=chunks(), headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert "content-length" not in response.request.headers
    small = json.dumps({"text": "hello"}).encode()
    response = api.client.post(
        url,
        content=iter([small[:5], small[5:]]),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 200


def test_a_streamed_reply_arrives_as_deltas_then_the_final_reply(api: Api) -> None:
    cid, headers = api.session()
    with api.client.stream(
        "POST",
        f"/v1/conversations/{cid}/messages/stream",
        json={"text": "How do I report a lost card?"},
        headers=headers,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse(response.read().decode())
    names = [name for name, _ in events]
    assert names[-1] == "final" and names.count("final") == 1
    assert names[:-1] and set(names[:-1]) == {"delta"}
    final = events[-1][1]
    assert final["replace_shown"] is False
    assert "".join(data["text"] for name, data in events[:-1]) == final["reply"]["text"]
    assert final["reply"]["route"] == "rag" and final["reply"]["citations"]
    assert api.bot.state(cid).history[-1] == ("bot", final["reply"]["text"])
    response = api.client.post(
        f"/v1/conversations/{cid}/messages/stream", json={"text": ""}, headers=headers
    )
    assert response.status_code == 422


# -- agents ----------------------------------------------------------------------------------
def test_assist_and_summary_follow_the_conversation_into_the_handoff_queue(api: Api) -> None:
    client, keys = api.client, api.keys
    cid, headers = api.session("C-1001")
    api.say(cid, headers, "Can you refund the fee you charged me as a goodwill gesture?")
    response = client.get(f"/v1/conversations/{cid}/assist", headers=auth(keys.agent))
    assert response.status_code == 200
    got = response.json()
    assert got["conversation_id"] == cid
    assert any(a["internal"] and a["source"].startswith("internal/") for a in got["articles"])
    assert [(r["kind"], r["internal"]) for r in got["suggested_replies"]] == [
        ("knowledge", False),
        ("knowledge", True),
    ]
    assert got["suggested_replies"][0]["citations"]
    assert got["summary"]["reason"] == "live"
    assert got["summary"]["customer"]["name"] == "Eleanor Whitcombe"

    listed = client.get("/v1/conversations", headers=auth(keys.agent)).json()
    assert {c["conversation_id"]: (c["queue"], c["handed_off"]) for c in listed} == {
        cid: (GENERAL, False)
    }
    assert listed[0]["last_message_at"] is not None
    assert client.get("/v1/conversations", headers=auth(keys.care_agent)).json() == []

    reply = api.say(cid, headers, "I want to speak to a person")
    assert reply["route"] == "handoff" and reply["handoff"]["queue"] == CARE
    # handed over: the conversation moves to the handoff queue and its agents
    assert get(client, f"/v1/conversations/{cid}/assist", keys.agent) == 403
    summary = client.get(f"/v1/conversations/{cid}/summary", headers=auth(keys.care_agent))
    assert summary.status_code == 200
    assert summary.json()["reason"] == reply["handoff"]["reason"]
    assert summary.json()["queue"] == CARE
    other, _ = api.session()
    everything = client.get("/v1/conversations", headers=auth(keys.supervisor)).json()
    assert {c["conversation_id"]: (c["queue"], c["handed_off"]) for c in everything} == {
        cid: (CARE, True),
        other: (GENERAL, False),
    }
    care = client.get("/v1/conversations", headers=auth(keys.care_agent)).json()
    assert [c["conversation_id"] for c in care] == [cid]


def test_observe_records_both_sides_for_assist(api: Api) -> None:
    client, keys = api.client, api.keys
    cid, _ = api.session()
    url = f"/v1/conversations/{cid}/observe"
    said = "My card 4539 1488 0343 6467 was stolen yesterday"
    response = client.post(
        url, json={"speaker": "customer", "text": said}, headers=auth(keys.agent)
    )
    assert response.status_code == 204
    response = client.post(
        url, json={"speaker": "agent", "text": "I can block it now."}, headers=auth(keys.agent)
    )
    assert response.status_code == 204
    response = client.post(url, json={"speaker": "bot", "text": "x"}, headers=auth(keys.agent))
    assert response.status_code == 422 and "speaker" in response.json()["detail"]
    response = client.post(
        "/v1/conversations/nope/observe",
        json={"speaker": "agent", "text": "x"},
        headers=auth(keys.agent),
    )
    assert response.status_code == 404

    got = client.get(f"/v1/conversations/{cid}/assist", headers=auth(keys.agent)).json()
    assert got["last_customer_message"] == "My card [CARD_NUMBER] was stolen yesterday"
    assert got["next_best_action"] == "verify identity"
    assert "cards/lost-or-stolen-card.md" in {a["source"] for a in got["articles"]}
    assert api.bot.state(cid).history[-1] == ("bot", "I can block it now.")


def test_admin_ingest_reports_an_up_to_date_store(api: Api) -> None:
    response = api.client.post("/v1/admin/ingest", headers=auth(api.keys.admin))
    assert response.status_code == 200
    report = response.json()
    assert report["added"] == report["updated"] == report["removed"] == []
    assert report["unchanged"] > 0
    assert report["chunks_total"] == api.bot.vector_store.count()
    assert api.client.post("/v1/admin/ingest", headers=auth(api.keys.agent)).status_code == 403


def test_the_widget_is_served(api: Api) -> None:
    response = api.client.get("/widget/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


# -- assist events over a real server --------------------------------------------------------
@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            deadline = time.monotonic() + 30
            while not server.started:
                assert thread.is_alive() and time.monotonic() < deadline
                time.sleep(0.02)
            wait_ready(client.get)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_agents_receive_fresh_suggestions_after_each_customer_message(
    made: tuple[FastAPI, Keys, Assistant],
) -> None:
    app, keys, _ = made
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        session = client.post("/v1/sessions", json={}, headers=auth(keys.customer)).json()
        cid, customer = session["conversation_id"], auth(session["token"])
        assert client.get(f"/v1/conversations/{cid}/events").status_code == 401
        messages = ["How do I freeze my card?", "What is the fee for an unarranged overdraft?"]
        received: list[Any] = []
        comments: list[str] = []
        with client.stream(
            "GET", f"/v1/conversations/{cid}/events", headers=auth(keys.agent)
        ) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            assert next(lines) == ": listening"

            def talk() -> None:
                with httpx.Client(base_url=url, timeout=60) as other:
                    for text in messages:
                        response = other.post(
                            f"/v1/conversations/{cid}/messages",
                            json={"text": text},
                            headers=customer,
                        )
                        assert response.status_code == 200
                        time.sleep(0.5)  # the agent's update comes before the next message

            talker = threading.Thread(target=talk)
            talker.start()
            event = ""
            for line in lines:
                if line.startswith(":"):
                    comments.append(line)
                elif line.startswith("event: "):
                    event = line[len("event: ") :]
                elif line.startswith("data: ") and event == "assist":
                    received.append(json.loads(line[len("data: ") :]))
                    if len(received) == len(messages):
                        break
            talker.join()
        assert [r["last_customer_message"] for r in received] == messages
        assert all(r["conversation_id"] == cid and r["articles"] for r in received)
        assert ": heartbeat" in comments  # 0.2 s heartbeat while the turns run


def test_a_key_without_its_variable_is_a_config_error(
    project: Path, make_bot: Callable[..., Assistant]
) -> None:
    _, env = configure(project)
    bot = make_bot(env=env)
    del env["T_SUPERVISOR"]
    with pytest.raises(ConfigError, match="T_SUPERVISOR"):
        create_app(bot, env=env)


def test_browsers_of_configured_origins_may_call(
    project: Path, make_bot: Callable[..., Assistant]
) -> None:
    _, env = configure(project)
    bot = make_bot(env=env)
    server = bot.config.server.model_copy(update={"cors_origins": ("https://shop.example",)})
    client = TestClient(create_app(bot, server, env=env))
    preflight = {"Access-Control-Request-Method": "POST"}
    allowed = client.options(
        "/v1/sessions", headers={"Origin": "https://shop.example", **preflight}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    denied = client.options("/v1/sessions", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in denied.headers


def test_origins_can_come_from_the_environment(project: Path) -> None:
    env = {"CXBOT_SERVER__CORS_ORIGINS": "https://a.example, https://b.example"}
    config = load_config(project, env=env)
    assert config.server.cors_origins == ("https://a.example", "https://b.example")
