"""Tests of :mod:`cxbot.testing.stub_llm` with real clients against the real server."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import openai
import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

from cxbot.testing.stub_llm import StubLLMServer, StubRequest


@pytest.fixture
def server() -> Iterator[StubLLMServer]:
    with StubLLMServer() as srv:
        yield srv


def _client(srv: StubLLMServer, **kwargs: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.base_url, api_key="test", max_retries=0, **kwargs)  # type: ignore[arg-type]


def _chat(srv: StubLLMServer) -> ChatOpenAI:
    return ChatOpenAI(base_url=srv.base_url, api_key="test", model="stub-model", max_retries=0)  # type: ignore[arg-type]


def _http(
    srv: StubLLMServer, method: str, path: str, data: bytes | None = None
) -> tuple[int, dict[str, object]]:
    url = srv.base_url.removesuffix("/v1") + path
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status), json.loads(resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read())


# -- openai client -----------------------------------------------------------------------


def test_openai_create_non_stream(server: StubLLMServer) -> None:
    with _client(server) as client:
        completion = client.chat.completions.create(
            model="stub-model",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hello there"},
            ],
        )
    assert completion.object == "chat.completion"
    assert completion.model == "stub-model"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "stub reply to: hello there"
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 4
    assert completion.usage.completion_tokens == 5
    assert completion.usage.total_tokens == 9


def test_openai_create_stream_joins_to_full_text(server: StubLLMServer) -> None:
    text = "  Hello,  world!\nSecond line\tend "
    server.script(text, "again")
    with _client(server) as client:
        stream = client.chat.completions.create(
            model="stub-model", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = list(stream)
        # the connection is reused for a second streamed request
        second = client.chat.completions.create(
            model="stub-model",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        second_chunks = list(second)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == text
    assert len(chunks) > 4  # streamed in pieces, not in one go
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in second_chunks if c.choices) == "again"
    assert second_chunks[-1].choices == []
    assert second_chunks[-1].usage is not None
    assert second_chunks[-1].usage.completion_tokens == 1
    assert [r.stream for r in server.requests] == [True, True]


def test_openai_models(server: StubLLMServer) -> None:
    with _client(server) as client:
        models = client.models.list()
    assert [m.id for m in models.data] == ["stub-model"]


# -- langchain ---------------------------------------------------------------------------


def test_langchain_invoke(server: StubLLMServer) -> None:
    reply = _chat(server).invoke([SystemMessage("You sell shoes."), HumanMessage("price?")])
    assert reply.content == "stub reply to: price?"
    assert server.requests[0].system == "You sell shoes."
    assert server.requests[0].model == "stub-model"


def test_langchain_stream(server: StubLLMServer) -> None:
    server.script("one two  three four")
    pieces = [chunk.content for chunk in _chat(server).stream("count")]
    assert all(isinstance(p, str) for p in pieces)
    assert "".join(str(p) for p in pieces) == "one two  three four"
    assert len([p for p in pieces if p]) == 4
    assert server.requests[0].stream is True
    assert server.requests[0].last_user == "count"


# -- behaviour ---------------------------------------------------------------------------


def test_scripted_replies_in_order_then_responder() -> None:
    with StubLLMServer(lambda req: "from responder") as srv, _client(srv) as client:
        srv.script("first", "second")
        srv.script("third")
        replies = [
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": str(i)}]
            )
            .choices[0]
            .message.content
            for i in range(5)
        ]
    assert replies == ["first", "second", "third", "from responder", "from responder"]
    assert [r.last_user for r in srv.requests] == ["0", "1", "2", "3", "4"]


def test_responder_receives_system_and_user_messages() -> None:
    seen: list[StubRequest] = []

    def responder(req: StubRequest) -> str:
        seen.append(req)
        return f"[{req.system}] {req.last_user.upper()}"

    with StubLLMServer(responder, model="custom") as srv:
        llm = ChatOpenAI(base_url=srv.base_url, api_key="test", model="custom", max_retries=0)  # type: ignore[arg-type]
        reply = llm.invoke(
            [
                SystemMessage("rule one"),
                SystemMessage("rule two"),
                HumanMessage("earlier"),
                HumanMessage([{"type": "text", "text": "last "}, {"type": "text", "text": "one"}]),
            ]
        )
    assert reply.content == "[rule one\nrule two] LAST ONE"
    (req,) = seen
    assert req.model == "custom"
    assert req.messages[0] == {"role": "system", "content": "rule one"}
    assert [m["role"] for m in req.messages] == ["system", "system", "user", "user"]
    assert req.last_user == "last one"
    assert req.body["model"] == "custom"
    assert srv.requests == seen


def test_fail_next_surfaces_as_internal_server_error(server: StubLLMServer) -> None:
    server.script("after failure")
    server.fail_next(500)
    with _client(server) as client:
        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert info.value.status_code == 500
        assert info.value.body == {
            "message": "Stub failure 500 Internal Server Error",
            "type": "server_error",
            "param": None,
            "code": None,
        }
        ok = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "y"}])
    assert ok.choices[0].message.content == "after failure"
    assert len(server.requests) == 2


def test_fail_next_times_and_status(server: StubLLMServer) -> None:
    server.fail_next(429, times=2)
    with _client(server) as client:
        for _ in range(2):
            with pytest.raises(openai.RateLimitError):
                client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "x"}], stream=True
                )
        ok = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "z"}])
    assert ok.choices[0].message.content == "stub reply to: z"
    with pytest.raises(ValueError):
        server.fail_next(200)


def test_langchain_surfaces_failure(server: StubLLMServer) -> None:
    server.fail_next(503)
    with pytest.raises(openai.InternalServerError):
        _chat(server).invoke("hi")


def test_delay_causes_client_timeout(server: StubLLMServer) -> None:
    server.delay(2.0)
    with _client(server, timeout=0.2) as client:
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert time.monotonic() - started < 1.5
    server.delay(0)
    with _client(server) as client:
        ok = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert ok.choices[0].message.content == "stub reply to: x"


# -- raw HTTP ----------------------------------------------------------------------------


def test_unknown_path_is_404_json(server: StubLLMServer) -> None:
    status, body = _http(server, "GET", "/v1/nope")
    assert status == 404
    assert isinstance(body["error"], dict)
    assert body["error"]["type"] == "not_found_error"
    status, _ = _http(server, "POST", "/v1/completions", b"{}")
    assert status == 404
    with _client(server) as client, pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="m", input="x")
    assert server.requests == []


def test_malformed_json_is_400(server: StubLLMServer) -> None:
    status, body = _http(server, "POST", "/v1/chat/completions", b"{not json")
    assert status == 400
    assert isinstance(body["error"], dict)
    assert body["error"]["type"] == "invalid_request_error"
    status, _ = _http(server, "POST", "/v1/chat/completions", b'{"model": "m"}')
    assert status == 400
    assert server.requests == []


def test_requests_is_a_copy(server: StubLLMServer) -> None:
    with _client(server) as client:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    snapshot = server.requests
    snapshot.clear()
    assert len(server.requests) == 1
    assert server.requests[0].system == ""


# -- lifecycle ---------------------------------------------------------------------------


def test_start_is_idempotent_and_stop_frees_the_port() -> None:
    srv = StubLLMServer()
    assert srv.start() is srv
    url = srv.base_url
    assert srv.start() is srv
    assert srv.base_url == url
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
    port = srv.port
    client = _client(srv)
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    srv.stop()
    srv.stop()  # a second stop is a no-op
    with pytest.raises(RuntimeError):
        _ = srv.base_url
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    client.close()
