"""Graceful degradation: a slow or failing chat model and a vector store that is down.

The chat model is the real OpenAI client against the stub server (scripted to time out or
answer 5xx); the vector store is a real Chroma server — one that is not listening, and one
stopped in the middle of a conversation. Every turn gets a reply within ``llm.deadline_s``,
and each failure is recorded as a ``Degraded`` event.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cxbot.assistant import Assistant
from cxbot.config import LLMConfig
from cxbot.conversation.events import BotUttered, Degraded, HandoffRequested
from cxbot.errors import LLMUnavailable
from cxbot.llm import ChatEndpoint, LLMBudget, build_chat_model
from cxbot.prompts import ReplyKey
from cxbot.stream import FinalReply
from cxbot.testing import StubLLMServer

QUESTION = "I lost my card, what should I do?"
DEADLINE_S = 5.0
RESERVE_S = 3.0


def llm_env(server: StubLLMServer, **extra: str) -> dict[str, str]:
    return {
        "CXBOT_LLM__BASE_URL": server.base_url,
        "CXBOT_LLM__MODEL": "stub-model",
        "CXBOT_LLM_API_KEY": "test",
        **extra,
    }


def strict_env(
    server: StubLLMServer,
    deadline_s: float = DEADLINE_S,
    reserve_s: float = RESERVE_S,
    **extra: str,
) -> dict[str, str]:
    """0.5 s per request and ten retries, which alone could take 5.5 s and more: the
    deadline must cut them short."""
    settings = {
        "CXBOT_LLM__TIMEOUT_S": "0.5",
        "CXBOT_LLM__MAX_RETRIES": "10",
        "CXBOT_LLM__BACKOFF_S": "0.05",
        "CXBOT_LLM__DEADLINE_S": str(deadline_s),
        "CXBOT_LLM__OFFLINE_RESERVE_S": str(reserve_s),
    }
    return llm_env(server, **{**settings, **extra})


def llm_waits(reply: Any) -> float:
    """Seconds the turn spent on chat-model requests that failed (its Degraded events)."""
    return sum(e.elapsed_ms for e in reply.events if isinstance(e, Degraded)) / 1000


@pytest.fixture
def stub() -> Iterator[StubLLMServer]:
    with StubLLMServer() as server:
        yield server


def endpoint(server: StubLLMServer, **settings: Any) -> ChatEndpoint:
    config = LLMConfig(base_url=server.base_url, model="stub-model")
    settings.setdefault("timeout_s", 0.4)
    settings.setdefault("backoff_s", 0.01)
    return ChatEndpoint(
        build_chat_model(config, env={"CXBOT_LLM_API_KEY": "test"}),
        component="rag_answer",
        **settings,
    )


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    start = time.monotonic()
    result = call()
    return result, time.monotonic() - start


# -- the endpoint: retries, backoff, deadline -------------------------------------------------


def test_5xx_answers_are_retried_until_one_succeeds(stub: StubLLMServer) -> None:
    stub.fail_next(502, times=2)
    stub.script("Third time lucky.")
    llm = endpoint(stub, max_retries=2)

    budget = LLMBudget.start(LLMConfig(deadline_s=10))
    with budget.active():
        reply = llm.invoke("hello")

    assert reply.content == "Third time lucky."
    assert len(stub.requests) == 3
    assert budget.events == []


def test_retries_run_out_with_a_typed_error_and_a_record(stub: StubLLMServer) -> None:
    stub.fail_next(500, times=10)
    llm = endpoint(stub, max_retries=2)

    budget = LLMBudget.start(LLMConfig(deadline_s=10))
    with budget.active(), pytest.raises(LLMUnavailable) as caught:
        llm.invoke("hello")

    assert caught.value.kind == "server_error" and caught.value.attempts == 3
    assert len(stub.requests) == 3
    (event,) = budget.events
    assert (event.component, event.error, event.attempts) == ("rag_answer", "server_error", 3)
    assert event.fallback == "offline"


def test_a_refused_request_is_not_retried(stub: StubLLMServer) -> None:
    stub.fail_next(400, times=3)
    llm = endpoint(stub, max_retries=2)

    with pytest.raises(LLMUnavailable) as caught:
        llm.invoke("hello")

    assert caught.value.kind == "rejected" and caught.value.attempts == 1
    assert len(stub.requests) == 1


def test_timeouts_stop_at_the_deadline_however_many_retries_are_allowed(
    stub: StubLLMServer,
) -> None:
    stub.delay(5)
    llm = endpoint(stub, timeout_s=0.3, max_retries=50)

    budget = LLMBudget.start(LLMConfig(deadline_s=1.5, offline_reserve_s=0.2))
    start = time.monotonic()
    with budget.active(), pytest.raises(LLMUnavailable) as caught:
        llm.invoke("hello")
    elapsed = time.monotonic() - start

    assert elapsed < 1.5 - 0.2 + 0.15  # the budget, and the last request's cancellation
    assert caught.value.kind in ("timeout", "deadline")
    assert 3 <= caught.value.attempts <= 5  # 0.3 s each, with short waits between
    assert [e.error for e in budget.events] == [caught.value.kind]


def test_after_a_failure_the_rest_of_the_turn_sends_nothing(stub: StubLLMServer) -> None:
    stub.fail_next(503, times=2)
    budget = LLMBudget.start(LLMConfig(deadline_s=10))
    with budget.active():
        with pytest.raises(LLMUnavailable):
            endpoint(stub, max_retries=1).invoke("first")
        with pytest.raises(LLMUnavailable) as caught:
            endpoint(stub, max_retries=1).for_component("handoff_summary").invoke("second")

    assert caught.value.kind == "skipped" and caught.value.attempts == 0
    assert len(stub.requests) == 2
    assert [(e.component, e.error) for e in budget.events] == [
        ("rag_answer", "server_error"),
        ("handoff_summary", "skipped"),
    ]


def test_a_stream_is_retried_until_its_first_chunk(stub: StubLLMServer) -> None:
    stub.fail_next(500, times=1)
    stub.script("One. Two. Three.")
    llm = endpoint(stub, max_retries=1)

    text = "".join(str(chunk.text) for chunk in llm.stream("hello"))

    assert text == "One. Two. Three."
    assert [r.stream for r in stub.requests] == [True, True]


def test_the_deadline_must_leave_room_for_the_offline_answer() -> None:
    with pytest.raises(ValueError, match="offline_reserve_s"):
        LLMConfig(deadline_s=1, offline_reserve_s=1)


# -- whole turns on a failing endpoint ---------------------------------------------------------


@pytest.fixture
def failing_bot(make_bot: Callable[..., Assistant], stub: StubLLMServer) -> Assistant:
    bot = make_bot(env=strict_env(stub))
    bot.warm_up()
    return bot


def test_the_stages_call_the_model_with_the_configured_settings(
    make_bot: Callable[..., Assistant], stub: StubLLMServer
) -> None:
    bot = make_bot(env=strict_env(stub, CXBOT_NLU__LLM="true"))
    pipeline = bot.pipeline

    assert pipeline.nlu.llm is not None and pipeline.rewriter is not None
    endpoints = {
        "rag_answer": pipeline.answerer.chat_model,
        "handoff_summary": pipeline.summaries.chat_model,
        "query_rewrite": pipeline.rewriter.chat_model,
        "intent_classify": pipeline.nlu.llm.chat_model,
    }
    for component, llm in endpoints.items():
        assert isinstance(llm, ChatEndpoint)
        assert llm.component == component
        assert (llm.timeout_s, llm.max_retries, llm.backoff_s) == (0.5, 10, 0.05)
        assert llm.model is bot.deps.chat_model
    assert bot.deps.chat_model.max_retries == 0  # the endpoint retries, not the client


TURNS = [
    ("greeting", "Hello there"),
    ("knowledge", QUESTION),
    ("follow-up", "and how long does the new one take to arrive?"),
    ("booking", "I'd like to book an appointment at a branch"),
    ("handoff", "I want to talk to a human"),
]


@pytest.mark.parametrize("failure", ["timeout", "http_500", "http_503"])
def test_every_turn_gets_a_reply_within_the_deadline(
    make_bot: Callable[..., Assistant], stub: StubLLMServer, failure: str
) -> None:
    # the reserve is what the offline turns take on this machine now (it may be busy)
    offline = make_bot()
    offline.warm_up()
    slowest = max(
        timed(lambda t=text: offline.respond(f"offline-{failure}", t))[1] for _, text in TURNS
    )
    reserve = 2 * slowest + 0.5
    deadline = reserve + 2.0
    failing_bot = make_bot(env=strict_env(stub, deadline, reserve))
    failing_bot.warm_up()
    if failure == "timeout":
        stub.delay(30)
    else:
        stub.fail_next(int(failure.removeprefix("http_")), times=1000)

    for name, text in TURNS:
        reply, elapsed = timed(lambda t=text: failing_bot.respond(f"fail-{failure}", t))
        assert reply.text, name
        assert elapsed < deadline, f"{name}: {elapsed:.2f} s, deadline {deadline:.2f} s"
        assert llm_waits(reply) <= 2.0 + 0.2, name  # deadline less reserve, and a little

    events = failing_bot.events(f"fail-{failure}")
    degraded = [e for e in events if isinstance(e, Degraded)]
    assert {e.component for e in degraded} >= {"rag_answer", "handoff_summary"}
    assert all(e.fallback == "offline" for e in degraded)
    assert any(isinstance(e, HandoffRequested) for e in events)


def test_the_offline_answer_says_why_and_cites_its_sources(
    failing_bot: Assistant, stub: StubLLMServer
) -> None:
    stub.fail_next(500, times=1000)

    reply = failing_bot.respond("offline-answer", QUESTION)

    note = failing_bot.deps.prompts.reply(ReplyKey.LLM_UNAVAILABLE)
    assert reply.route == "rag"
    assert reply.text.startswith(note + "\n\n")
    assert reply.citations
    (degraded,) = [e for e in reply.events if isinstance(e, Degraded)]
    assert (degraded.component, degraded.error) == ("rag_answer", "server_error")
    assert degraded.attempts == len(stub.requests) >= 2  # retried, within the deadline
    assert degraded in failing_bot.events("offline-answer")  # stored with the turn


def test_a_handoff_on_a_failing_endpoint_keeps_the_template_summary(
    failing_bot: Assistant, stub: StubLLMServer
) -> None:
    stub.delay(30)

    reply = failing_bot.respond("offline-handoff", "I want a human")

    assert llm_waits(reply) <= DEADLINE_S - RESERVE_S + 0.2
    assert reply.route == "handoff"
    assert reply.handoff is not None and reply.handoff.written_by == "template"
    degraded = [e for e in reply.events if isinstance(e, Degraded)]
    assert [e.component for e in degraded] == ["handoff_summary"]
    assert degraded[0].error in ("timeout", "deadline")  # the last request, or no time left


def test_a_streamed_turn_on_a_failing_endpoint_ends_with_the_offline_answer(
    failing_bot: Assistant, stub: StubLLMServer
) -> None:
    import asyncio

    stub.fail_next(503, times=1000)

    async def stream() -> list[Any]:
        return [e async for e in failing_bot.astream("offline-stream", QUESTION)]

    events = asyncio.run(stream())

    final = events[-1]
    assert isinstance(final, FinalReply)
    assert llm_waits(final.reply) <= DEADLINE_S - RESERVE_S + 0.2
    assert final.reply.text.startswith(failing_bot.deps.prompts.reply(ReplyKey.LLM_UNAVAILABLE))
    assert final.reply.citations
    assert any(isinstance(e, Degraded) for e in final.reply.events)


def test_the_endpoint_recovering_answers_with_the_model_again(
    make_bot: Callable[..., Assistant], stub: StubLLMServer
) -> None:
    # a deadline no busy machine reaches: this is about recovering, not about time
    failing_bot = make_bot(env=strict_env(stub, 120.0, 3.0, CXBOT_LLM__MAX_RETRIES="1"))
    stub.fail_next(500, times=1000)
    first = failing_bot.respond("recovering", QUESTION)
    stub.clear()
    before = len(stub.requests)
    second = failing_bot.respond("recovered", "How do I freeze my debit card?")

    assert any(isinstance(e, Degraded) for e in first.events)
    assert len(stub.requests) > before  # the model was asked again, and answered
    assert not any(isinstance(e, Degraded) for e in second.events)
    note = failing_bot.deps.prompts.reply(ReplyKey.LLM_UNAVAILABLE)
    assert not second.text.startswith(note)


# -- the vector store down ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def knowledge_only_on_a_server(project: Path) -> Path:
    """The project with no local vector store (the keyword index and intent model stay)."""
    shutil.rmtree(project / ".cxbot" / "chroma")
    return project


SMALL_DOCS = {
    "lost-cards.md": """# Lost or stolen cards

If you lose your card, freeze it straight away in the app under Cards, then report it lost.
We send a replacement card within three working days. You can freeze and unfreeze a debit
card in the app at any time.
""",
}


@pytest.fixture
def small_knowledge(knowledge_only_on_a_server: Path) -> Path:
    """One short document to ingest into a Chroma server (no ingest manifest yet)."""
    root = knowledge_only_on_a_server
    for name in ("ingest.sqlite", "lexical.sqlite"):
        (root / ".cxbot" / name).unlink(missing_ok=True)
    folder = root / "knowledge" / "small"
    folder.mkdir()
    for name, text in SMALL_DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return root


def _assert_apology(bot: Assistant, conversation: str, reply: Any) -> None:
    assert reply.text == bot.deps.prompts.reply(ReplyKey.SEARCH_UNAVAILABLE)
    assert reply.route == "rag" and reply.citations == ()
    said = [e for e in reply.events if isinstance(e, BotUttered)]
    assert said[0].failed
    degraded = [e for e in bot.events(conversation) if isinstance(e, Degraded)]
    assert degraded[-1].component == "vector_store"
    assert degraded[-1].error == "unavailable" and degraded[-1].fallback == "apology"


def test_an_unreachable_vector_store_gets_an_apology_and_the_offer_of_a_person(
    knowledge_only_on_a_server: Path, make_bot: Callable[..., Assistant]
) -> None:
    bot = make_bot(env={"CXBOT_STORAGE__CHROMA_URL": f"http://127.0.0.1:{_free_port()}"})

    greeting = bot.respond("store-down", "Hello")
    reply, elapsed = timed(lambda: bot.respond("store-down", QUESTION))
    booking = bot.respond("store-down", "I'd like to book an appointment at a branch")

    assert greeting.route == "flow"
    _assert_apology(bot, "store-down", reply)
    assert elapsed < 5
    assert booking.route == "flow"  # what does not need the knowledge still works
    person = bot.respond("store-down", "talk to a person")
    assert person.route == "handoff"


CHROMA = Path(sys.executable).parent / "chroma"


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A real ``chroma run`` on a free loopback port (the test may stop it)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "chroma.log").open("wb")
    server = subprocess.Popen(
        [str(CHROMA), "run", "--path", str(tmp_path / "chroma"), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(f"chroma run exited: {(tmp_path / 'chroma.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("the Chroma server did not answer its heartbeat within 60 s")
                time.sleep(0.1)
        yield url, server
    finally:
        _close_clients(port)
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=10)
        log.close()


def _close_clients(port: int) -> None:
    """Close the connections of the chromadb HTTP clients made for this server: chromadb
    keeps every client's system in a class-level cache and never closes its httpx session."""
    from chromadb.api.fastapi import FastAPI
    from chromadb.api.shared_system_client import SharedSystemClient

    cache = SharedSystemClient._identifier_to_system
    for identifier, system in list(cache.items()):
        if str(system.settings.chroma_server_http_port) == str(port):
            system.instance(FastAPI)._session.close()
            del cache[identifier]


@pytest.mark.integration
def test_a_vector_store_stopped_mid_conversation_gets_an_apology(
    small_knowledge: Path,
    make_bot: Callable[..., Assistant],
    chroma_server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, server = chroma_server
    bot = make_bot(
        env={"CXBOT_STORAGE__CHROMA_URL": url, "CXBOT_KNOWLEDGE__DIR": "knowledge/small"}
    )
    bot.ingest()
    answered = bot.respond("store-stops", QUESTION)
    assert answered.route == "rag" and answered.citations

    server.terminate()
    server.wait(timeout=10)
    reply = bot.respond("store-stops", "How do I freeze my debit card?")

    _assert_apology(bot, "store-stops", reply)
