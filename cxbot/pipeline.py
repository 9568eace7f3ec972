"""One turn, stage by stage. The only module that knows the order of the stages.

    message ─► input guardrails ─► NLU ─► router ─┬─► flow engine
                                                  ├─► RAG (retrieve + profile + answer)
                                                  ├─► small talk
                                                  └─► handoff
            ─► output guardrails ─► handoff triggers ─► commit events ─► Reply

The message is embedded once (inside the guardrail context, after PII redaction) and the
vector is reused by the injection guard, the intent classifier and retrieval.
"""

from __future__ import annotations

import copy
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal, assert_never

from cxbot import identity
from cxbot.conversation.events import (
    BotUttered,
    ConversationContinued,
    CustomerIdentified,
    Degraded,
    Event,
    GuardrailTriggered,
    HandoffRequested,
    TurnAssessed,
    UserUttered,
)
from cxbot.conversation.receipts import receipt_for
from cxbot.conversation.reducer import apply_all
from cxbot.conversation.state import ConversationState
from cxbot.conversation.turns import TurnRecord, VerdictRecord
from cxbot.deps import TurnDeps
from cxbot.embeddings import features_of
from cxbot.errors import BackendError, InvalidMessage, UnknownCustomer
from cxbot.flows.actions import ActionContext
from cxbot.flows.engine import FlowEngine
from cxbot.guardrails.base import Guardrail, GuardrailContext, Verdict
from cxbot.handoff.summary import HandoffSummary, SummaryWriter
from cxbot.handoff.triggers import (
    HandoffReason,
    asks_for_person,
    customer_request,
    guardrail_blocks,
    low_confidence,
    negative_sentiment,
    opening,
    policy_topic,
    repeated_failure,
    score_sentiment,
    select_queue,
    unsure,
)
from cxbot.llm import LLMBudget
from cxbot.nlu.stage import NLUStage
from cxbot.profiles.store import Profile, visible_facts
from cxbot.prompts import ReplyKey
from cxbot.rag.answer import Answerer, citation_of, relevant_facts
from cxbot.rag.retriever import Retriever
from cxbot.rag.rewrite import QueryRewriter
from cxbot.router import FlowRoute, HandoffRoute, RagRoute, SmallTalkRoute, TurnRoute, route
from cxbot.types import Citation, NLUResult, Reply, Route

if TYPE_CHECKING:
    from datetime import datetime

    from cxbot.embeddings import Vector
    from cxbot.rag.store import Hit

__all__ = ["Pipeline", "Trace", "clean_message"]

log = logging.getLogger("cxbot.turn")

# control characters, the replacement character and lone surrogates (not encodable text)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd\ud800-\udfff]")


_SURROGATE = re.compile(r"[\ud800-\udfff]")
"""A lone surrogate: a ``str`` can hold one, but it cannot be encoded, stored or sent."""


def clean_message(text: object, limit: int) -> str:
    """The message as text without control characters, or :class:`InvalidMessage`."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidMessage("the message is not UTF-8 text") from None
    if not isinstance(text, str):
        raise InvalidMessage(f"the message must be text, not {type(text).__name__}")
    if len(text) > limit:
        raise InvalidMessage(
            f"the message has {len(text)} characters; the limit is {limit} "
            "(limits.max_message_chars in cxbot.yaml)"
        )
    cleaned = _CONTROL.sub(" ", text).strip()
    if not cleaned:
        raise InvalidMessage("the message is empty")
    printable = sum(ch.isprintable() for ch in cleaned) / len(cleaned)
    if printable < 0.9 or not any(ch.isalnum() for ch in cleaned):
        raise InvalidMessage("the message is not readable text")
    return cleaned


def _blocked(verdicts: Sequence[tuple[str, Verdict]]) -> bool:
    return any(v.action == "block" for _, v in verdicts)


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


def _passage(hit: Hit) -> str:
    """A cited passage as the grounding guardrail reads it: its heading, then its text."""
    title, section = hit.metadata.get("title", ""), hit.metadata.get("section", "")
    heading = f"{title} — {section}" if section and section != title else str(title)
    return f"{heading}\n{hit.text}" if heading else hit.text


class Trace:
    """Milliseconds per stage; nested stages are subtracted from their parent."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}
        self._children: list[float] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._children.append(0.0)
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = (time.perf_counter() - start) * 1000
            children = self._children.pop()
            if self._children:
                self._children[-1] += elapsed
            self.ms[name] = round(self.ms.get(name, 0.0) + elapsed - children, 3)


@dataclass(slots=True)
class _Turn:
    """What the stages of one turn share (private to the pipeline)."""

    state: ConversationState
    text: str
    profile: Profile | None
    guard_ctx: GuardrailContext
    action_ctx: ActionContext
    trace: Trace
    verified: bool = False
    """Whether the turn knows who it talks to (see ``Pipeline._identify``)."""
    preface: str | None = None
    """Said before the reply, after the output guardrails ("that's you verified")."""
    events: list[Event] = field(default_factory=list)
    llm: LLMBudget | None = None
    """The chat model's deadline and failures in this turn."""
    nlu: NLUResult | None = None
    on_text: Callable[[str], None] | None = None
    """Where a streamed turn's answer goes, piece by piece, as the output guardrails pass it."""
    started: float = 0.0
    """``time.perf_counter()`` when the turn began."""
    message_id: str | None = None
    """The client's id for the message: the reply is kept under it with the commit."""
    verdicts: list[VerdictRecord] = field(default_factory=list)
    """Every guardrail verdict of the turn, "allow" included, for the turn's record."""
    withheld: bool = False
    """The message answers an identity question: it is neither logged nor recorded."""


@dataclass(slots=True)
class _Outcome:
    text: str
    route: Route
    citations: tuple[Citation, ...] = ()
    events: tuple[Event, ...] = ()
    failed: bool = False
    handoff: HandoffReason | None = None
    queue: str | None = None
    topic: str | None = None
    reopens: str | None = None
    """Outside business hours: when a colleague will pick the handoff up."""


def _said(outcome: _Outcome) -> BotUttered:
    sources = tuple(dict.fromkeys(c.source for c in outcome.citations))
    return BotUttered(outcome.text, outcome.route, outcome.failed, sources)


class Pipeline:
    """Runs turns: the stages, in order, over explicit dependencies."""

    def __init__(
        self,
        deps: TurnDeps,
        *,
        input_guardrails: Sequence[Guardrail],
        output_guardrails: Sequence[Guardrail],
        nlu: NLUStage,
        flows: FlowEngine,
        retriever: Retriever,
        answerer: Answerer,
        summaries: SummaryWriter,
        profile_vectors: Mapping[str, Vector],
        rewriter: QueryRewriter | None = None,
    ) -> None:
        self.deps = deps
        self.input_guardrails = tuple(input_guardrails)
        self.output_guardrails = tuple(output_guardrails)
        self.nlu = nlu
        self.flows = flows
        self.retriever = retriever
        self.answerer = answerer
        self.summaries = summaries
        self.profile_vectors = profile_vectors
        self.rewriter = rewriter
        """Turns follow-up questions into standalone search queries (None: search as asked)."""

    def with_deps(self, deps: TurnDeps) -> Pipeline:
        """The same stages over other stores or another clock."""
        twin = copy.copy(self)
        twin.deps = deps
        return twin

    # -- the turn ------------------------------------------------------------------------
    def run(
        self,
        conversation_id: str,
        message: object,
        customer_id: str | None,
        *,
        authenticated: bool | None = None,
        on_text: Callable[[str], None] | None = None,
        message_id: str | None = None,
    ) -> Reply:
        """One turn. With ``on_text``, a generated RAG answer is streamed into it sentence by
        sentence, each only once the answer so far passes the output guardrails. With
        ``message_id``, the reply is committed with the turn as that message's receipt."""
        started = time.perf_counter()
        budget = LLMBudget.start(self.deps.config.llm)
        with budget.active():  # every chat-model request of the turn stops by its deadline
            reply = self._run(
                conversation_id,
                message,
                customer_id,
                on_text,
                message_id=message_id,
                authenticated=authenticated,
            )
        return replace(reply, trace={**reply.trace, "total": _ms_since(started)})

    def _run(
        self,
        conversation_id: str,
        message: object,
        customer_id: str | None,
        on_text: Callable[[str], None] | None = None,
        *,
        message_id: str | None = None,
        authenticated: bool | None = None,
    ) -> Reply:
        turn = self._begin(conversation_id, message, customer_id)
        turn.llm = LLMBudget.current()
        self._identify(turn, customer_id, authenticated)
        turn.on_text = on_text
        turn.message_id = message_id
        if turn.state.handed_off:
            return self._finish(turn, self._with_agent(turn))
        blocked = self._input_guardrails(turn)
        if blocked is not None:
            return self._finish(turn, self._handoff_if_triggered(turn, blocked))
        outcome = self._verification(turn)
        if outcome is None:
            self._understand(turn)
            outcome = self._assess(turn) or self._dispatch(turn)
        outcome = self._output_guardrails(turn, outcome)
        if turn.preface is not None:  # a canned text the guardrails need not read
            outcome = replace(outcome, text=f"{turn.preface}\n\n{outcome.text}".strip())
        outcome = self._handoff_if_triggered(turn, outcome)
        return self._finish(turn, outcome)

    # -- stages --------------------------------------------------------------------------
    def _begin(self, conversation_id: str, message: object, customer_id: str | None) -> _Turn:
        started = time.perf_counter()
        if not conversation_id or not conversation_id.strip():
            raise InvalidMessage("the conversation id is empty")
        if _SURROGATE.search(conversation_id):
            raise InvalidMessage("the conversation id is not text: it has lone surrogates")
        text = clean_message(message, self.deps.config.limits.max_message_chars)
        profile = None
        if customer_id is not None:
            profile = (
                None if _SURROGATE.search(customer_id) else self.deps.profiles.get(customer_id)
            )
            if profile is None:
                raise UnknownCustomer(f"no customer with id {customer_id!r} in the profile store")
        state = self.deps.conversations.load(conversation_id)
        now = self.deps.clock()
        trace = Trace()

        def embed(value: str) -> Vector:
            with trace.stage("embedding"):
                return self.deps.embedder.embed_query(value)

        turn = _Turn(
            state=state,
            text=text,
            profile=profile,
            guard_ctx=GuardrailContext(
                now=now,
                customer_id=customer_id,
                embed=embed,
                message=text,
                own_contacts=profile.contacts if profile else frozenset(),
                own_names=frozenset({profile.name}) if profile and profile.name else frozenset(),
            ),
            action_ctx=ActionContext(
                customer_id=customer_id or state.customer_id,
                now=now.replace(tzinfo=None),
                calendar=self.deps.calendar,
                key=f"{conversation_id}#{state.version}",
            ),
            trace=trace,
            started=started,
        )
        if customer_id is not None and customer_id != state.customer_id:
            turn.events.append(CustomerIdentified(customer_id))
        return turn

    def screen_input(self, message: str) -> list[tuple[str, Verdict]]:
        """The input guardrails' verdicts on a first message (no turn, nothing stored)."""
        trace = Trace()
        turn = _Turn(
            state=ConversationState(conversation_id="screen"),
            text=message,
            profile=None,
            guard_ctx=GuardrailContext(
                now=self.deps.clock(),
                customer_id=None,
                embed=self.deps.embedder.embed_query,
                message=message,
            ),
            action_ctx=ActionContext(None, self.deps.clock(), self.deps.calendar),
            trace=trace,
        )
        return self._screen(turn, "input", message)[1]

    def redact(self, message: str) -> str:
        """``message`` after the input guardrails' rewrites (PII redaction)."""
        for _, verdict in reversed(self.screen_input(message)):
            if verdict.text is not None:
                return verdict.text
        return message

    def _screen(
        self, turn: _Turn, stage: Literal["input", "output"], text: str
    ) -> tuple[str, list[tuple[str, Verdict]]]:
        """Run one stage's guardrails in order until one blocks: apply rewrites, keep every
        verdict for the turn's record and put each one that is not "allow" in the events;
        returns the final text and the verdicts by unit (the last one a block, if any)."""
        guards = self.input_guardrails if stage == "input" else self.output_guardrails
        verdicts: list[tuple[str, Verdict]] = []
        with turn.trace.stage("guardrails"):
            for guard in guards:
                if stage == "input":
                    turn.guard_ctx.message = text
                verdict = guard.check(text, turn.guard_ctx)
                verdicts.append((guard.name, verdict))
                turn.verdicts.append(
                    VerdictRecord(stage, guard.name, verdict.action, verdict.reason, verdict.score)
                )
                if verdict.action == "allow":
                    continue
                turn.events.append(
                    GuardrailTriggered(
                        stage, guard.name, verdict.action, verdict.reason, verdict.score
                    )
                )
                if verdict.action == "block":
                    return text, verdicts
                if verdict.text is not None:
                    text = verdict.text
        if stage == "input":
            turn.guard_ctx.message = text
        return text, verdicts

    def _input_guardrails(self, turn: _Turn) -> _Outcome | None:
        """A blocked message gets the blocking unit's own reply (scope, abuse) or the
        standard one."""
        verdicts = self._screen(turn, "input", turn.guard_ctx.message)[1]
        if not _blocked(verdicts):
            return None
        turn.events.append(UserUttered(turn.guard_ctx.message))
        reply = verdicts[-1][1].text or self.deps.prompts.reply(ReplyKey.BLOCKED_INJECTION)
        return _Outcome(reply, "blocked")

    def _understand(self, turn: _Turn) -> None:
        vector = turn.guard_ctx.vector()
        features = features_of(self.deps.embedder, turn.guard_ctx.message, vector)
        with turn.trace.stage("nlu"):
            turn.nlu = self.nlu.run(
                turn.text, features, turn.guard_ctx.now, redacted=turn.guard_ctx.message
            )
        turn.events.append(
            UserUttered(turn.guard_ctx.message, turn.nlu.intent, round(turn.nlu.confidence, 4))
        )

    def _assess(self, turn: _Turn) -> _Outcome | None:
        """Read the message for the handoff triggers (not understood, sentiment, policy
        topic); an explicit request for a person or a policy topic hands over at once."""
        assert turn.nlu is not None
        cfg = self.deps.config.handoff
        topic = policy_topic(turn.nlu, turn.text, cfg)
        sentiment = score_sentiment(turn.text).score
        assessed = TurnAssessed(unsure(turn.nlu, turn.state, cfg), sentiment, topic)
        before = apply_all(turn.state, turn.events)
        if apply_all(before, [assessed]) != before:  # a neutral, understood turn changes nothing
            turn.events.append(assessed)
        reason = customer_request(turn.nlu, turn.text, cfg)
        if reason is None and topic is not None:
            reason = "policy_topic"
        return _Outcome("", "handoff", handoff=reason) if reason is not None else None

    def _dispatch(self, turn: _Turn) -> _Outcome:
        assert turn.nlu is not None
        nlu, state = turn.nlu, turn.state
        continues = (
            state.flow is not None
            and nlu.intent in self.flows.flows
            and nlu.intent != state.flow.flow
            and self.flows.continues(state, turn.text, nlu.entities, turn.action_ctx)
        )
        target = route(nlu, state, self.flows.flows, self.nlu.threshold, continues_flow=continues)
        if self._needs_verification(turn, target):
            return self._start_verification(turn)
        match target:
            case FlowRoute():
                return self._flow(turn, target)
            case RagRoute():
                return self._rag(turn)
            case SmallTalkRoute():
                return self._small_talk(target)
            case HandoffRoute():
                return _Outcome("", "handoff", handoff=target.reason)
            case _:
                assert_never(target)

    def _flow(self, turn: _Turn, target: FlowRoute) -> _Outcome:
        assert turn.nlu is not None
        state = apply_all(turn.state, turn.events)
        with turn.trace.stage("flow"):
            if target.start:
                step = self.flows.start(
                    state, target.flow, turn.text, turn.nlu.entities, turn.action_ctx
                )
            else:
                step = self.flows.advance(state, turn.text, turn.nlu.entities, turn.action_ctx)
        match step.status:
            case "in_progress" | "completed" | "cancelled":
                return _Outcome(step.text, "flow", events=step.events)
            case "needs_customer":
                return _Outcome(
                    self.deps.prompts.reply(ReplyKey.NEED_CUSTOMER), "flow", failed=True
                )
            case "failed":
                return _Outcome("", "flow", events=step.events, handoff="flow_retries")
            case "no_progress":
                # the answer is checked against its passages here; the flow's own question
                # that follows it is not a claim from them
                answer = self._output_guardrails(turn, self._rag(turn))
                turn.guard_ctx.passages = ()
                with turn.trace.stage("flow"):
                    question = self.flows.prompt(state, turn.action_ctx)
                resume = self.deps.prompts.reply(ReplyKey.DIGRESSION_RESUME, question=question)
                return replace(answer, text=f"{answer.text}\n\n{resume}", route="flow")
            case _:
                assert_never(step.status)

    def _rag(self, turn: _Turn) -> _Outcome:
        vector = turn.guard_ctx.vector()
        question = turn.guard_ctx.message
        try:
            search, search_vector, hits, facts = self._retrieve(turn, question, vector)
        except BackendError as exc:  # the knowledge search is down: say so, offer a person
            return self._search_unavailable(turn, exc)
        known = tuple(f"{key.replace('_', ' ')}: {value}" for key, value in facts.items())
        # a streamed answer is screened against every passage it may cite; the reply then
        # against the passages it does cite (what the grounding guardrail checks)
        turn.guard_ctx.passages = tuple(_passage(h) for h in hits) + known
        with turn.trace.stage("generation"):
            answer = self.answerer.run(
                search, search_vector, hits, facts, on_text=self._release(turn)
            )
        if answer is None:
            turn.guard_ctx.passages = ()
            return _Outcome(self.deps.prompts.reply(ReplyKey.DONT_KNOW), "rag", failed=True)
        cited = set(answer.citations)
        turn.guard_ctx.passages = (
            tuple(_passage(h) for h in hits if citation_of(h) in cited) + known
        )
        text = answer.text
        if turn.llm is not None and any(e.component == "rag_answer" for e in turn.llm.events):
            text = f"{self.deps.prompts.reply(ReplyKey.LLM_UNAVAILABLE)}\n\n{text}"
        return _Outcome(text, "rag", citations=answer.citations)

    def _retrieve(
        self, turn: _Turn, question: str, vector: Vector
    ) -> tuple[str, Vector, list[Hit], dict[str, str]]:
        """The query searched, its vector, the passages found and the profile facts that
        apply; :class:`~cxbot.errors.BackendError` when a store fails."""
        with turn.trace.stage("retrieval"):
            if self.rewriter is not None and turn.state.history:
                search, search_vector, hits = self.rewriter.search(
                    question,
                    vector,
                    turn.state.history,
                    embed=self.deps.embedder.embed_query,
                    retrieve=self.retriever.run,
                )
            else:
                search, search_vector = question, vector
                hits = self.retriever.run(vector, question)
            facts: dict[str, str] = {}
            if turn.profile is not None and turn.verified:
                cfg = self.deps.config.profiles
                facts = relevant_facts(
                    question,
                    vector,
                    visible_facts(turn.profile, cfg.fields_for("rag"), cfg.consent_gated),
                    self.profile_vectors,
                    self.deps.config.rag.profile_threshold,
                )
        return search, search_vector, hits, facts

    def _search_unavailable(self, turn: _Turn, exc: BackendError) -> _Outcome:
        """The knowledge search failed: an apology and the offer of a person, recorded as a
        :class:`~cxbot.conversation.events.Degraded` event."""
        log.warning(
            "turn conversation=%s: knowledge search unavailable: %s",
            turn.state.conversation_id,
            exc,
        )
        turn.events.append(
            Degraded(
                "vector_store",
                "unavailable",
                attempts=1,
                elapsed_ms=turn.trace.ms.get("retrieval", 0.0),
                fallback="apology",
            )
        )
        reply = self.deps.prompts.reply(ReplyKey.SEARCH_UNAVAILABLE)
        return _Outcome(reply, "rag", failed=True)

    # -- identity ------------------------------------------------------------------------
    def _identify(self, turn: _Turn, customer_id: str | None, authenticated: bool | None) -> None:
        """Whether the turn knows who it talks to: a customer id the caller authenticated,
        or one the customer verified (not expired). Until then no profile field joins an
        answer or a prompt and actions run for nobody. A known customer's latest
        conversation on another channel continues here."""
        if authenticated is None:
            authenticated = self.deps.config.identity.trust_customer_id
        claimed = customer_id if customer_id is not None else turn.state.customer_id
        state = apply_all(turn.state, turn.events)  # another customer: verification reset
        turn.verified = claimed is not None and (
            authenticated or identity.verified_until(state, turn.guard_ctx.now)
        )
        if claimed is not None and turn.verified:
            if turn.state.version == 0:  # a new conversation (another channel, session)
                self._continue_elsewhere(turn, claimed)
        else:
            turn.guard_ctx.own_contacts = frozenset()
            turn.action_ctx = replace(turn.action_ctx, customer_id=None)

    def _continue_elsewhere(self, turn: _Turn, customer_id: str) -> None:
        """Carry the customer's latest conversation (another channel or session, linked
        within ``channels.context_ttl_s``) into this new one, or into one where they have
        just verified: its task in progress and recent messages, committed before the turn
        so that the turn reads them."""
        store = self.deps.conversations
        here = turn.state.conversation_id
        linked = store.linked_conversation(customer_id, now=turn.guard_ctx.now.timestamp())
        if linked is None or linked == here:
            return
        source = store.load(linked)
        if source.customer_id != customer_id or not (source.flow or source.history):
            return
        frame = source.flow
        carried = ConversationContinued(
            linked,
            flow=frame.flow if frame else None,
            slots=dict(frame.slots) if frame else {},
            requested=frame.requested if frame else None,
            awaiting_confirmation=frame.awaiting_confirmation if frame else False,
            history=source.history,
        )
        limit = self.deps.config.limits.history_turns
        turn.state = store.commit(apply_all(turn.state, [carried], history_limit=limit), [carried])

    def _link(self, customer_id: str, conversation_id: str, now: datetime) -> None:
        ttl = self.deps.config.channels.context_ttl_s
        self.deps.conversations.link_customer(
            customer_id, conversation_id, expires_at=now.timestamp() + ttl
        )

    def _needs_verification(self, turn: _Turn, target: TurnRoute) -> bool:
        """An account question (one a profile field would answer) or a task for the
        customer's own bookings, from a customer who is not verified: one who claimed an
        id, or (``identity.ask_customer_id``) a session with no customer id at all."""
        if turn.verified:
            return False
        if self._claimed(turn) is None:
            if not self.deps.config.identity.ask_customer_id:
                return False
        elif (turn.profile or self._known_profile(turn.state)) is None:
            return False
        match target:
            case FlowRoute():
                return self.flows.flows[target.flow].requires_customer
            case RagRoute():
                if identity.asks_how_to(turn.guard_ctx.message):
                    return False  # how to do something: the help articles answer anyone
                fields = self.deps.config.profiles.fields_for("rag")
                asked = relevant_facts(
                    turn.guard_ctx.message,
                    turn.guard_ctx.vector(),
                    dict.fromkeys(fields, ""),
                    self.profile_vectors,
                    self.deps.config.identity.account_similarity,
                )
                return bool(asked)
            case _:
                return False

    def _claimed(self, turn: _Turn) -> str | None:
        return apply_all(turn.state, turn.events).customer_id

    def _start_verification(self, turn: _Turn) -> _Outcome:
        """Ask the first identity question (the customer number when the session has no
        customer id), keeping the request to answer once verified; a customer locked out
        by earlier failures goes to a person."""
        claimed = self._claimed(turn)
        cfg = self.deps.config.identity
        since = turn.guard_ctx.now.timestamp() - cfg.lockout_s
        store = self.deps.conversations
        if (
            claimed is not None
            and store.verification_failures(claimed, since=since) >= cfg.max_attempts
        ):
            text = self.deps.prompts.reply(ReplyKey.VERIFY_LOCKED)
            return _Outcome(text, "handoff", handoff="verification_failed")
        fields = identity.steps(cfg, anonymous=claimed is None)
        step = identity.start(claimed, fields, turn.guard_ctx.message)
        turn.events.extend(step.events)
        question = self.deps.prompts.reply(ReplyKey.VERIFY_ASK, field=step.field)
        return _Outcome(self.deps.prompts.reply(ReplyKey.VERIFY_START, question=question), "flow")

    def _verification(self, turn: _Turn) -> _Outcome | None:
        """The customer's answer to an identity question, checked against their profile and
        recorded without the answer; ``None`` when no question waits (or they ask for a
        person, which the turn then handles). A session with no customer id checks the
        profile of the customer number it gave, or none when no profile has it."""
        check = turn.state.verification
        if check is None or check.step is None or asks_for_person(turn.text):
            return None
        claimed = self._claimed(turn)
        checked = claimed if claimed is not None else check.customer_id
        profile = self._profile_of(turn, checked)
        if claimed is not None and profile is None:
            return None
        cfg = self.deps.config.identity
        store = self.deps.conversations
        now = turn.guard_ctx.now
        since = now.timestamp() - cfg.lockout_s
        if check.step == identity.CUSTOMER_NUMBER:
            step = identity.identify(turn.text, find=self._find_customer, config=cfg)
        else:
            step = identity.verify(
                check,
                turn.text,
                customer_id=checked,
                profile=profile,
                config=cfg,
                now=now,
                earlier_failures=0
                if checked is None
                else store.verification_failures(checked, since=since),
                fields=identity.steps(cfg, anonymous=claimed is None),
            )
        if step.outcome == "reask" and not identity.could_be_answer(turn.text):
            # a sentence with no digits (every answer has some) is something else to deal
            # with, such as a fraud report: the turn handles it; the question still waits
            return None
        turn.events.append(UserUttered(identity.WITHHELD))
        turn.withheld = True
        turn.events.extend(step.events)
        prompts = self.deps.prompts
        question = prompts.reply(ReplyKey.VERIFY_ASK, field=step.field or "")
        match step.outcome:
            case "ask":
                return _Outcome(question, "flow")
            case "reask":
                return _Outcome(prompts.reply(ReplyKey.VERIFY_REASK, question=question), "flow")
            case "failed":
                if checked is not None:
                    store.record_verification(checked, succeeded=False, at=now.timestamp())
                return _Outcome(prompts.reply(ReplyKey.VERIFY_FAILED, question=question), "flow")
            case "locked":
                if checked is not None:
                    store.record_verification(checked, succeeded=False, at=now.timestamp())
                text = prompts.reply(ReplyKey.VERIFY_LOCKED)
                return _Outcome(text, "handoff", handoff="verification_failed")
            case "verified":
                assert checked is not None and profile is not None
                store.record_verification(checked, succeeded=True, at=now.timestamp())
                turn.verified = True
                turn.profile = profile
                turn.guard_ctx.customer_id = checked
                turn.guard_ctx.own_contacts = profile.contacts
                if profile.name:
                    turn.guard_ctx.own_names = frozenset({profile.name})
                turn.action_ctx = replace(turn.action_ctx, customer_id=checked)
                self._continue_elsewhere(turn, checked)
                return self._verified(turn, step.pending)
            case _:
                assert_never(step.outcome)

    def _profile_of(self, turn: _Turn, customer_id: str | None) -> Profile | None:
        if customer_id is None:
            return None
        if turn.profile is not None and turn.profile.id == customer_id:
            return turn.profile
        return self.deps.profiles.get(customer_id)

    def _find_customer(self, customer_id: str) -> Profile | None:
        """The profile with this id (a customer number an anonymous session gave)."""
        return None if _SURROGATE.search(customer_id) else self.deps.profiles.get(customer_id)

    def _verified(self, turn: _Turn, pending: str | None) -> _Outcome:
        """Verified: answer the request that needed it, or carry on with the task."""
        intro = self.deps.prompts.reply(ReplyKey.VERIFIED, pending=pending)
        if pending is not None:
            turn.text = pending
            turn.guard_ctx.message = pending
            recorded = len(turn.events)
            self._understand(turn)
            del turn.events[recorded:]  # the request is on record from when it was made
            turn.preface = intro
            return self._assess(turn) or self._dispatch(turn)
        state = apply_all(turn.state, turn.events)
        if state.flow is None:
            return _Outcome(intro, "flow")
        question = self.flows.prompt(state, turn.action_ctx)
        resume = self.deps.prompts.reply(ReplyKey.DIGRESSION_RESUME, question=question)
        return _Outcome(f"{intro}\n\n{resume}", "flow")

    def _small_talk(self, target: SmallTalkRoute) -> _Outcome:
        key = {"greet": ReplyKey.GREETING, "thanks": ReplyKey.THANKS}.get(
            target.intent, ReplyKey.GOODBYE
        )
        config = self.deps.config
        text = self.deps.prompts.reply(
            key, company=config.company, assistant_name=config.assistant_name
        )
        return _Outcome(text, "flow")

    def _with_agent(self, turn: _Turn) -> _Outcome:
        # the human agent reads the message, so it is screened (redacted) but never blocked
        self._screen(turn, "input", turn.guard_ctx.message)
        turn.events.append(UserUttered(turn.guard_ctx.message))
        return _Outcome(self.deps.prompts.reply(ReplyKey.WITH_AGENT), "handoff")

    def _output_guardrails(self, turn: _Turn, outcome: _Outcome) -> _Outcome:
        if not outcome.text:
            return outcome
        text, verdicts = self._screen(turn, "output", outcome.text)
        if _blocked(verdicts):
            text = verdicts[-1][1].text or self.deps.prompts.reply(ReplyKey.BLOCKED_OUTPUT)
            return replace(outcome, text=text, citations=(), route="blocked")
        return replace(outcome, text=text)

    def _release(self, turn: _Turn) -> Callable[[str], bool] | None:
        """For a streamed turn, the answerer's sink: a piece goes on to ``turn.on_text`` only
        if the answer so far (not just the piece) passes every output guardrail unchanged.
        A block rejects the piece and stops the answer; a rewrite ends the release but not
        the answer. Nothing is recorded here: :meth:`_output_guardrails` screens the whole
        reply afterwards and audits its verdicts."""
        sink = turn.on_text
        if sink is None:
            return None
        shown: list[str] = []
        releasing = True

        def release(piece: str) -> bool:
            nonlocal releasing
            if not releasing:
                return True
            text = "".join(shown) + piece
            with turn.trace.stage("guardrails"):
                for guard in self.output_guardrails:
                    action = guard.check(text, turn.guard_ctx).action
                    if action == "block":
                        return False
                    if action == "rewrite":
                        releasing = False
                        return True
            shown.append(piece)
            sink(piece)
            return True

        return release

    def _handoff_if_triggered(self, turn: _Turn, outcome: _Outcome) -> _Outcome:
        after = apply_all(turn.state, [*turn.events, *outcome.events, _said(outcome)])
        cfg = self.deps.config.handoff
        reason = outcome.handoff
        if reason is None:
            reason = guardrail_blocks(after, cfg) or negative_sentiment(after.sentiment, cfg)
        if reason is None and repeated_failure(after, cfg.max_failed_turns):
            reason = "repeated_failure"
        if reason is None:
            reason = low_confidence(after, cfg)
        if reason is None:
            return outcome
        now = turn.guard_ctx.now
        hours = opening(now, cfg.hours)
        intent = after.flow.flow if after.flow else turn.nlu.intent if turn.nlu else None
        queue = select_queue(
            cfg, reason, topic=after.topic, intent=intent, after_hours=not hours.open
        )
        reopens = None if hours.open else hours.describe(now)
        text = self.deps.prompts.reply(ReplyKey.HANDOFF, queue=queue, reopens=reopens)
        if outcome.text:
            text = f"{outcome.text}\n\n{text}"
        return replace(
            outcome,
            text=text,
            route="handoff",
            handoff=reason,
            queue=queue,
            topic=after.topic,
            reopens=reopens,
        )

    def _summary(self, turn: _Turn, outcome: _Outcome, events: Sequence[Event]) -> HandoffSummary:
        assert outcome.handoff is not None
        state = apply_all(turn.state, events)
        earlier = self.deps.conversations.events(turn.state.conversation_id)
        log = [*earlier, *(e for e in events if not isinstance(e, BotUttered))]
        profile = turn.profile or self._known_profile(state)
        cfg = self.deps.config.profiles
        facts = (
            visible_facts(profile, cfg.fields_for("handoff"), cfg.consent_gated)
            if profile is not None and turn.verified
            else None
            if profile is None
            else {}  # not verified: the claimed id only
        )
        with turn.trace.stage("generation"):
            return self.summaries.run(
                state=state,
                events=log,
                reason=outcome.handoff,
                queue=outcome.queue or self.deps.config.handoff.queue,
                profile=profile,
                now=turn.guard_ctx.now,
                facts=facts,
                topic=outcome.topic,
                reopens=outcome.reopens,
                transcript_turns=self.deps.config.handoff.transcript_turns,
            )

    def _record(self, turn: _Turn, number: int) -> None:
        """Log the committed turn for analytics: its clock, stage timings and the vector of
        the redacted message (when the turn embedded it). A failed write loses the record,
        never the turn."""
        turn_log = self.deps.turn_log
        if turn_log is None:
            return
        trace = {**turn.trace.ms, "total": _ms_since(turn.started)}
        record = TurnRecord(
            conversation_id=turn.state.conversation_id,
            turn=number,
            at=turn.guard_ctx.now,
            text=identity.WITHHELD if turn.withheld else turn.guard_ctx.message,
            in_flow=turn.state.flow is not None,
            trace=trace,
            vector=turn.guard_ctx.vector() if turn.nlu is not None and not turn.withheld else None,
            verdicts=tuple(turn.verdicts),
        )
        try:
            turn_log.record(record)
        except BackendError as exc:
            log.warning("turn conversation=%s not logged: %s", record.conversation_id, exc)

    def _known_profile(self, state: ConversationState) -> Profile | None:
        return self.deps.profiles.get(state.customer_id) if state.customer_id else None

    def _finish(self, turn: _Turn, outcome: _Outcome) -> Reply:
        events: list[Event] = [
            *turn.events,
            *outcome.events,
            _said(outcome),
        ]
        summary: HandoffSummary | None = None
        if outcome.handoff is not None:
            summary = self._summary(turn, outcome, events)
            events.append(
                HandoffRequested(
                    outcome.handoff,
                    summary.queue,
                    topic=outcome.topic,
                    after_hours=outcome.reopens is not None,
                )
            )
        if turn.llm is not None:  # the chat model's failures, as they happened
            events += turn.llm.events
        state = apply_all(turn.state, events, history_limit=self.deps.config.limits.history_turns)
        reply = self._reply(turn, outcome, events, summary)
        receipt = receipt_for(turn.message_id, turn.text, reply) if turn.message_id else None
        self.deps.conversations.commit(replace(state, turn=state.turn + 1), events, receipt=receipt)
        self._record(turn, state.turn + 1)
        if turn.verified and state.customer_id is not None:
            self._link(state.customer_id, state.conversation_id, turn.guard_ctx.now)
        log.info(
            "turn conversation=%s turn=%d route=%s intent=%s handoff=%s total_ms=%.1f",
            turn.state.conversation_id,
            state.turn + 1,
            outcome.route,
            turn.nlu.intent if turn.nlu else None,
            outcome.handoff,
            sum(turn.trace.ms.values()),
        )
        # only the redacted message is ever logged
        message = identity.WITHHELD if turn.withheld else turn.guard_ctx.message
        log.debug("turn conversation=%s message=%r", turn.state.conversation_id, message)
        return reply

    def _reply(
        self,
        turn: _Turn,
        outcome: _Outcome,
        events: Sequence[Event],
        summary: HandoffSummary | None,
    ) -> Reply:
        return Reply(
            text=outcome.text,
            route=outcome.route,
            intent=turn.nlu.intent if turn.nlu else None,
            citations=outcome.citations,
            events=tuple(events),
            handoff=summary,
            trace=dict(turn.trace.ms),
        )
