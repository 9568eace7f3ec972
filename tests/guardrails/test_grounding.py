"""Grounding: unsupported sentences of knowledge answers are flagged, supported ones kept."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from cxbot.assistant import Assistant
from cxbot.config import LLMConfig
from cxbot.conversation.events import GuardrailTriggered
from cxbot.embeddings import SentenceTransformerEmbedder
from cxbot.errors import ConfigError
from cxbot.evals.grounding import evaluate_grounding, load_grounding_cases
from cxbot.guardrails.base import GuardrailContext
from cxbot.guardrails.output.grounding import GroundingGuard, GroundingSettings, split_sentences
from cxbot.llm import build_chat_model
from cxbot.prompts import PromptLibrary
from cxbot.testing import StubLLMServer, StubRequest

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "evals" / "northwind" / "grounding" / "cases.jsonl"

PASSAGE = (
    "Lost or Stolen Card — What happens next\n"
    "- **Your old card stops working immediately.** Any payment attempted with it will be "
    "declined.\n"
    "- **A replacement card is sent free of charge.** Standard delivery takes 3-5 working "
    "days to your registered UK address. Express delivery (1-2 working days) costs £10 and is "
    "free for Premier customers."
)


def ctx(passages: tuple[str, ...] = (PASSAGE,)) -> GuardrailContext:
    def no_embed(text: str) -> object:
        raise AssertionError("the grounding guardrail does not embed the user message")

    return GuardrailContext(
        now=datetime(2026, 11, 25, 10),
        customer_id=None,
        embed=no_embed,  # type: ignore[arg-type]
        passages=passages,
    )


@pytest.fixture(scope="module")
def guard(embedder: SentenceTransformerEmbedder) -> GroundingGuard:
    return GroundingGuard(embedder.embed_documents, fallback="I couldn't find that.")


def test_shipped_cases_meet_the_targets_on_the_whole_set_and_the_held_out_half(
    guard: GroundingGuard,
) -> None:
    cases = load_grounding_cases(CASES)
    assert len(cases) >= 50
    report = evaluate_grounding(guard, cases)
    for rates in (report["overall"], report["by_split"]["test"]):
        assert rates["flagged_unsupported_rate"] >= 0.90, rates
        assert rates["flagged_supported_rate"] <= 0.05, rates
    # every kind of injected sentence is represented, and the sweep is monotonic
    assert set(report["by_kind"]) >= {"number", "product", "policy", "claim", "offtopic"}
    caught = [row["flagged_unsupported_rate"] for row in report["sweep"]]
    assert caught == sorted(caught, reverse=True)


def test_a_changed_number_is_removed_and_the_rest_kept(guard: GroundingGuard) -> None:
    answer = (
        "Your old card stops working immediately. A replacement card is sent free of charge. "
        "Express delivery takes 1-2 working days and costs £15. [1]"
    )
    verdict = guard.check(answer, ctx())
    assert verdict.action == "rewrite"
    assert verdict.text == (
        "Your old card stops working immediately. A replacement card is sent free of charge. [1]"
    )
    assert "15" in verdict.reason


def test_an_answer_made_mostly_of_claims_not_in_the_passage_is_replaced(
    guard: GroundingGuard,
) -> None:
    answer = (
        "Replacement cards come with a new card number. You can collect one from any branch "
        "the same day. Your old card stops working immediately."
    )
    verdict = guard.check(answer, ctx())
    assert verdict.action == "block"
    assert verdict.text == "I couldn't find that."


def test_quoted_sentences_pass_without_embedding(embedder: SentenceTransformerEmbedder) -> None:
    def refuse(texts: list[str]) -> object:
        raise AssertionError("a quoted sentence needs no embedding")

    guard = GroundingGuard(refuse, fallback="-")
    answer = (
        "Your old card stops working immediately. Standard delivery takes 3-5 working days to "
        "your registered UK address. [1]"
    )
    assert guard.check(answer, ctx()).action == "allow"


def test_replies_without_passages_and_questions_are_not_checked(guard: GroundingGuard) -> None:
    assert guard.check("Our branches are open on the moon.", ctx(())).action == "allow"
    supports = guard.assess(["What date would you like?", "Here is what I found:"], [PASSAGE])
    assert [s.claim for s in supports] == [False, False]


def test_sentences_split_with_their_citation_markers() -> None:
    text = "First one. [1] Second one [2]\nThird: Fourth."
    pieces = split_sentences(text)
    assert "".join(s + gap for s, gap in pieces) == text
    assert [s for s, _ in pieces] == ["First one.", "Second one [2]", "Third:", "Fourth."]


def test_the_reply_of_a_turn_is_checked_against_its_cited_passages(bot: Assistant) -> None:
    reply = bot.respond("grounded", "How long does a replacement card take to arrive?")
    assert reply.route == "rag" and reply.citations
    grounding = [
        e for e in reply.events if isinstance(e, GuardrailTriggered) and e.guardrail == "grounding"
    ]
    assert grounding == []  # an extractive answer quotes its passages


def test_the_llm_judge_decides_and_a_failing_endpoint_falls_back_offline(
    embedder: SentenceTransformerEmbedder,
) -> None:
    prompts = PromptLibrary(ROOT / "prompts")
    with StubLLMServer() as stub:
        model = build_chat_model(
            LLMConfig.model_validate(
                {"base_url": stub.base_url, "model": "stub-model", "max_retries": 0}
            ),
            {"CXBOT_LLM_API_KEY": "test"},
        )
        guard = GroundingGuard(
            embedder.embed_documents,
            fallback="-",
            settings=GroundingSettings(judge="llm"),
            chat_model=model,
            prompts=prompts,
        )
        sentences = [
            "Your old card stops working immediately.",  # quoted: never sent to the judge
            "A replacement is free and usually arrives within a week.",
            "Express delivery costs £10, and Premier customers pay nothing.",
        ]
        stub.script('{"unsupported": [1]}')
        judged = guard.assess(sentences, [PASSAGE])
        assert [s.supported for s in judged] == [True, False, True]
        assert [s.judged_by for s in judged] == ["offline", "llm", "llm"]
        assert "(1) A replacement is free" in stub.requests[-1].last_user

        stub.fail_next(500)
        fallback = guard.assess(sentences, [PASSAGE])
        assert {s.judged_by for s in fallback} == {"offline"}
        assert guard.failures


def test_a_missing_cross_encoder_leaves_the_offline_check(
    embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    guard = GroundingGuard(
        embedder.embed_documents,
        fallback="-",
        settings=GroundingSettings(nli_model=str(tmp_path / "no-such-model")),
    )
    guard.warm_up()
    supports = guard.assess(["Express delivery costs £25."], [PASSAGE])
    assert supports[0].judged_by == "offline" and not supports[0].supported


def test_a_bad_case_row_names_its_line(tmp_path: Path) -> None:
    good = json.loads(CASES.read_text(encoding="utf-8").splitlines()[0])
    bad = {**good, "sentences": [{"text": "Made up.", "supported": False}]}
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_grounding_cases(path)
    assert raised.value.line == 2


def test_the_eval_command_prints_both_halves_and_the_sweep(project: Path) -> None:
    from typer.testing import CliRunner

    from cxbot.cli import app

    few = project / "few.jsonl"
    few.write_text("".join(CASES.read_text(encoding="utf-8").splitlines(True)[:4]), "utf-8")
    out = project / "grounding.json"
    result = CliRunner().invoke(
        app,
        ["eval", "grounding", "--project", str(project), "--cases", str(few), "--json", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "test: unsupported flagged" in result.output
    assert "threshold  unsupported flagged" in result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["overall"]["unsupported"] + report["overall"]["supported"] == 15
    assert len(report["cases"]) == 4


def test_an_llm_answer_loses_the_sentence_its_passages_do_not_support(
    make_bot: Callable[..., Assistant],
) -> None:
    invented = "Replacement cards can also be delivered by drone within 20 minutes."

    def respond(request: StubRequest) -> str:
        lines = request.last_user.splitlines()
        first = lines[lines.index(next(line for line in lines if line.startswith("[1] "))) + 1]
        quoted = split_sentences(first.lstrip("-* "))[0][0]
        return f"{quoted} [1] {invented} [1]"

    with StubLLMServer(respond) as stub:
        bot = make_bot(
            env={
                "CXBOT_LLM__BASE_URL": stub.base_url,
                "CXBOT_LLM__MODEL": "stub-model",
                "CXBOT_LLM_API_KEY": "test",
                "CXBOT_LLM__MAX_RETRIES": "0",
            }
        )
        reply = bot.respond("drone", "How long does a replacement card take to arrive?")
    assert reply.route == "rag"
    assert "drone" not in reply.text and reply.text.endswith("[1]")
    triggered = [e for e in reply.events if isinstance(e, GuardrailTriggered)]
    assert [(e.guardrail, e.action) for e in triggered] == [("grounding", "rewrite")]
