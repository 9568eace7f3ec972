"""The assistant with a chat model: a real ChatOpenAI talking HTTP to the stub server."""

from __future__ import annotations

import json
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from cxbot.assistant import Assistant
from cxbot.conversation.events import BotUttered, UserUttered
from cxbot.embeddings import SentenceTransformerEmbedder
from cxbot.errors import BackendError
from cxbot.handoff.summary import LLMSummaryFields
from cxbot.prompts import PromptLibrary, PromptTask
from cxbot.rag.answer import passage_sentences
from cxbot.rag.store import Hit
from cxbot.testing import FixedClock, StubLLMServer, StubRequest

NOW = datetime(2026, 11, 25, 10, 0)
QUESTION = "I lost my card, what should I do?"
HUMAN = "I want to talk to a human"


def llm_env(server: StubLLMServer, **extra: str) -> dict[str, str]:
    return {
        "CXBOT_LLM__BASE_URL": server.base_url,
        "CXBOT_LLM__MODEL": "stub-model",
        "CXBOT_LLM_API_KEY": "test",
        **extra,
    }


@pytest.fixture(scope="module")
def stub() -> Iterator[StubLLMServer]:
    with StubLLMServer(model="server-default-model") as server:
        yield server


def _drain(server: StubLLMServer) -> None:
    """Consume scripted replies and failures a failing test may have left queued."""
    body = json.dumps({"model": "drain", "messages": [{"role": "user", "content": "drain"}]})
    for _ in range(50):
        request = urllib.request.Request(
            server.base_url + "/chat/completions",
            data=body.encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                text = json.loads(response.read())["choices"][0]["message"]["content"]
        except urllib.error.HTTPError as err:
            err.close()
            continue
        if text == "stub reply to: drain":
            return
    raise AssertionError("the stub server would not drain")


@pytest.fixture
def server(stub: StubLLMServer) -> Iterator[StubLLMServer]:
    yield stub
    _drain(stub)


@pytest.fixture(scope="module")
def llm_bot(
    tmp_path_factory: pytest.TempPathFactory,
    ingested_project: Path,
    embedder: SentenceTransformerEmbedder,
    stub: StubLLMServer,
) -> Iterator[Assistant]:
    """One warmed-up assistant on the stub for the module; no client retries, so each
    call of the chat model is one request."""
    root = tmp_path_factory.mktemp("llm") / "project"
    shutil.copytree(ingested_project, root)
    bot = Assistant.from_dir(
        root,
        embedder=embedder,
        clock=FixedClock(NOW),
        env=llm_env(stub, CXBOT_LLM__MAX_RETRIES="0"),
    )
    bot.warm_up()
    yield bot
    bot.close()


def _new_requests(server: StubLLMServer, before: int) -> list[StubRequest]:
    return server.requests[before:]


def _hits(bot: Assistant, embedder: SentenceTransformerEmbedder, text: str) -> list[Hit]:
    return bot.pipeline.retriever.run(embedder.embed_query(text), text)


# -- wiring ------------------------------------------------------------------------------


def test_from_dir_builds_the_chat_model_from_the_env_mapping(
    make_bot: Callable[..., Assistant], stub: StubLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CXBOT_LLM_API_KEY", "from-process-env")
    bot = make_bot(env=llm_env(stub, CXBOT_LLM__MAX_RETRIES="0"))

    model = bot.deps.chat_model
    assert model is not None
    assert model.openai_api_base == stub.base_url
    assert model.model_name == "stub-model"
    assert model.openai_api_key.get_secret_value() == "test"
    assert model.max_retries == 0
    assert bot.config.llm.enabled


def test_process_environment_is_not_read_when_an_env_mapping_is_given(
    make_bot: Callable[..., Assistant], stub: StubLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in llm_env(stub).items():
        monkeypatch.setenv(name, value)
    bot = make_bot()  # env={}: offline

    assert bot.deps.chat_model is None
    assert not bot.config.llm.enabled


# -- grounded answers --------------------------------------------------------------------


def test_knowledge_question_sends_one_grounded_chat_request(
    llm_bot: Assistant, server: StubLLMServer, embedder: SentenceTransformerEmbedder
) -> None:
    hits = _hits(llm_bot, embedder, QUESTION)
    assert len(hits) >= 2
    # a reply its passage supports, so the grounding guardrail lets it through as it is
    scripted = f"From the article:\n{passage_sentences(hits[1].text)[0]} [2]"
    server.script(scripted)
    before = len(server.requests)

    reply = llm_bot.respond("llm-answer", QUESTION)

    sent = _new_requests(server, before)
    assert len(sent) == 1
    request = sent[0]
    assert request.model == "stub-model"
    assert not request.stream
    assert [m["role"] for m in request.messages] == ["system", "user"]
    system = PromptLibrary(llm_bot.root / "prompts").render(
        PromptTask.SYSTEM, company="Northwind Bank", assistant_name="Nora"
    )
    assert request.system == system
    assert system.startswith("You are Nora, the customer assistant of Northwind Bank.")
    user = request.last_user
    assert QUESTION in user
    headers = re.findall(r"^\[(\d+)\] ", user, re.M)
    assert headers == [str(n) for n in range(1, len(hits) + 1)]
    for n, hit in enumerate(hits, start=1):
        assert f"[{n}] {hit.metadata['title']} ({hit.metadata['source']})\n{hit.text}" in user
    assert "reply exactly: I don't know." in user

    assert reply.route == "rag"
    assert reply.text == scripted
    assert [c.source for c in reply.citations] == [hits[1].metadata["source"]]
    assert hits[1].text.startswith(reply.citations[0].snippet.removesuffix("…"))


def test_citation_markers_select_and_order_the_citations(
    llm_bot: Assistant, server: StubLLMServer, embedder: SentenceTransformerEmbedder
) -> None:
    question = "How do I freeze my debit card?"
    hits = _hits(llm_bot, embedder, question)
    assert len(hits) >= 3
    server.script("Freeze it in the app [3]. You can unfreeze it any time [1][3]. See [9].")

    reply = llm_bot.respond("llm-markers", question)

    # [9] is out of range and ignored; each passage is cited once, in passage order
    expected = [hits[0], hits[2]]
    assert [c.source for c in reply.citations] == [h.metadata["source"] for h in expected]
    assert [c.score for c in reply.citations] == [round(h.score, 4) for h in expected]


def test_reply_without_markers_cites_every_passage(
    llm_bot: Assistant, server: StubLLMServer, embedder: SentenceTransformerEmbedder
) -> None:
    question = "How do I change my PIN?"
    hits = _hits(llm_bot, embedder, question)
    server.script("You can change your PIN at any Northwind cash machine.")

    reply = llm_bot.respond("llm-no-markers", question)

    assert reply.text == "You can change your PIN at any Northwind cash machine."
    assert [c.score for c in reply.citations] == [round(h.score, 4) for h in hits]


def test_llm_dont_know_is_a_failed_turn_without_citations(
    llm_bot: Assistant, server: StubLLMServer, embedder: SentenceTransformerEmbedder
) -> None:
    question = "Can I choose a different colour for my debit card?"
    if not _hits(llm_bot, embedder, question):
        pytest.fail("precondition: the question must retrieve passages, so the LLM is asked")
    server.script("I don't know.")
    before = len(server.requests)

    reply = llm_bot.respond("llm-dont-know", question)

    if len(_new_requests(server, before)) != 1:
        pytest.fail("precondition: the answer must come from the LLM")
    assert "don't know" in reply.text and reply.route == "rag"

    assert reply.citations == ()
    said = [e for e in reply.events if isinstance(e, BotUttered)]
    assert said[0].failed


# -- PII ---------------------------------------------------------------------------------


def test_pii_never_reaches_the_llm_nor_the_transcript(
    llm_bot: Assistant, server: StubLLMServer
) -> None:
    email, card = "jane.doe@example.org", "4111 1111 1111 1111"
    before = len(server.requests)
    server.script("Report the card as lost in the app [1].")
    first = llm_bot.respond(
        "llm-pii", f"My email is {email} and I lost my card {card}, what should I do?"
    )
    server.script(
        json.dumps(
            {
                "reason": "The customer asked for a person.",
                "open_question": "What to do about a lost card",
                "tried": ["answered from the lost card article"],
                "suggested_next_step": "Confirm the card is cancelled.",
            }
        )
    )
    second = llm_bot.respond("llm-pii", HUMAN)

    assert first.route == "rag" and second.route == "handoff"
    sent = _new_requests(server, before)
    assert len(sent) == 2  # the answer, then the handoff summary
    for request in sent:
        raw = json.dumps(request.body)
        for secret in (email, "jane.doe", card, card.replace(" ", ""), "4111"):
            assert secret not in raw
    assert "[EMAIL]" in sent[0].last_user and "[CARD_NUMBER]" in sent[0].last_user
    assert "[EMAIL]" in sent[1].last_user  # the draft summary quotes the redacted message

    said = [e.text for e in llm_bot.events("llm-pii") if isinstance(e, UserUttered)]
    assert said == [
        "My email is [EMAIL] and I lost my card [CARD_NUMBER], what should I do?",
        HUMAN,
    ]
    assert second.handoff is not None
    assert all(email not in m and "4111" not in m for m in second.handoff.last_user_messages)


# -- handoff summaries -------------------------------------------------------------------


def test_handoff_summary_written_by_the_llm(llm_bot: Assistant, server: StubLLMServer) -> None:
    fields = {
        "reason": "The customer wants to speak to a person about a lost card.",
        "open_question": "Has my replacement card been ordered?",
        "tried": ["Explained how to report a lost card in the app"],
        "suggested_next_step": "Check the replacement order and confirm the delivery date.",
    }
    server.script("Report it in the app [1].", "Here you go:\n" + json.dumps(fields))
    llm_bot.respond("llm-summary", QUESTION, customer_id="C-1001")
    before = len(server.requests)

    reply = llm_bot.respond("llm-summary", HUMAN)

    sent = _new_requests(server, before)
    assert len(sent) == 1
    prompt = sent[0].last_user
    assert json.dumps(LLMSummaryFields.model_json_schema()) in prompt
    assert '"conversation_id": "llm-summary"' in prompt
    assert QUESTION in prompt
    assert reply.route == "handoff"
    summary = reply.handoff
    assert summary is not None
    assert summary.written_by == "llm"
    assert summary.reason == fields["reason"]
    assert summary.open_question == fields["open_question"]
    assert summary.tried == fields["tried"]
    assert summary.suggested_next_step == fields["suggested_next_step"]
    # the rest comes from the conversation, not the model
    assert summary.conversation_id == "llm-summary"
    assert summary.queue == llm_bot.config.handoff.queue
    assert summary.customer is not None and summary.customer.id == "C-1001"
    assert summary.customer.name == "Eleanor Whitcombe"
    assert summary.last_user_messages == [QUESTION, HUMAN]
    assert summary.created_at == NOW


def test_invalid_summary_json_twice_falls_back_to_the_template(
    llm_bot: Assistant, server: StubLLMServer
) -> None:
    server.script(
        "Sure! The customer would like a person.",
        json.dumps({"reason": "missing the next step"}),
    )
    before = len(server.requests)

    reply = llm_bot.respond("llm-bad-json", HUMAN)

    sent = _new_requests(server, before)
    assert len(sent) == 2
    # the retry carries the first answer and says what was wrong with it
    assert [m["role"] for m in sent[1].messages] == ["user", "assistant", "user"]
    assert sent[1].messages[1]["content"] == "Sure! The customer would like a person."
    assert "not valid JSON" in sent[1].last_user
    summary = reply.handoff
    assert summary is not None
    assert summary.written_by == "template"
    assert summary.reason == "customer_request"
    assert summary.suggested_next_step.startswith("Greet the customer")
    assert reply.route == "handoff"


def test_summary_json_valid_on_the_retry_is_used(llm_bot: Assistant, server: StubLLMServer) -> None:
    server.script(
        "not json at all",
        json.dumps({"reason": "Wants a person.", "suggested_next_step": "Say hello."}),
    )
    before = len(server.requests)

    reply = llm_bot.respond("llm-retry-json", HUMAN)

    assert len(_new_requests(server, before)) == 2
    assert reply.handoff is not None
    assert reply.handoff.written_by == "llm"
    assert reply.handoff.reason == "Wants a person."
    assert reply.handoff.open_question is None


def test_summary_falls_back_to_the_template_when_the_llm_fails(
    llm_bot: Assistant, server: StubLLMServer
) -> None:
    server.fail_next(500, times=1)
    before = len(server.requests)

    reply = llm_bot.respond("llm-summary-500", HUMAN)

    assert len(_new_requests(server, before)) == 1
    assert reply.route == "handoff"
    assert reply.handoff is not None
    assert reply.handoff.written_by == "template"
    assert reply.handoff.reason == "customer_request"


# -- the endpoint failing ----------------------------------------------------------------


def test_llm_http_500_on_an_answer_still_gives_a_reply_or_a_backend_error(
    llm_bot: Assistant, server: StubLLMServer
) -> None:
    server.fail_next(500, times=1)
    before = len(server.requests)

    try:
        reply = llm_bot.respond("llm-answer-500", QUESTION)
    except BackendError:
        pass  # a typed error the chat backend can handle is acceptable
    else:
        assert reply.text
        assert reply.route in ("rag", "handoff")
    finally:
        assert len(_new_requests(server, before)) == 1


# -- LLM intent classification -------------------------------------------------------------


@pytest.fixture
def classifying_bot(make_bot: Callable[..., Assistant], stub: StubLLMServer) -> Iterator[Assistant]:
    bot = make_bot(env=llm_env(stub, CXBOT_LLM__MAX_RETRIES="0", CXBOT_NLU__LLM="true"))
    bot.warm_up()
    yield bot
    _drain(stub)


def test_llm_classifies_the_intent_from_the_redacted_message(
    classifying_bot: Assistant, stub: StubLLMServer
) -> None:
    before = len(stub.requests)
    stub.script('{"intent": "book_appointment", "confidence": 0.93}')
    reply = classifying_bot.respond(
        "llm-intent-1", "Fancy a chat with someone at a branch? Email me at jo.bloggs@example.com"
    )
    (request,) = _new_requests(stub, before)
    assert "book_appointment" in request.last_user and "none" in request.last_user
    assert "jo.bloggs@example.com" not in request.last_user
    assert reply.route == "flow" and reply.intent == "book_appointment"


def test_unusable_llm_answer_falls_back_to_the_trained_model(
    classifying_bot: Assistant, stub: StubLLMServer
) -> None:
    for answer in ("I think it's about a booking", '{"intent": "order_pizza"}'):
        before = len(stub.requests)
        stub.script(answer)
        reply = classifying_bot.respond(f"llm-intent-{answer[:3]}", "I want to talk to a human")
        requests = _new_requests(stub, before)
        assert "Classify the customer's message" in requests[0].last_user
        assert all("Classify" not in r.last_user for r in requests[1:])  # then the summary
        assert reply.route == "handoff" and reply.intent == "human_agent"
