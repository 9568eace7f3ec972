"""The Assistant facade: builds the pipeline from a project folder and owns its stores."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxbot.channels import render
from cxbot.config import CONFIG_FILE, CxbotConfig, load_config
from cxbot.conversation.events import BotUttered, Event, GuardrailTriggered, UserUttered
from cxbot.conversation.reducer import apply_all
from cxbot.conversation.state import ConversationState
from cxbot.conversation.store import ConcurrentUpdate, ConversationStore, SQLiteConversationStore
from cxbot.conversation.turns import SQLiteTurnLog, VerdictRecord
from cxbot.deps import TurnDeps
from cxbot.embeddings import Embedder, SentenceTransformerEmbedder
from cxbot.errors import ConfigError, InvalidMessage, UnknownConversation
from cxbot.flows.actions import Action, ActionContext, builtin_actions
from cxbot.flows.actions.calendar import CalendarBackend, SQLiteCalendar
from cxbot.flows.engine import FlowEngine
from cxbot.flows.spec import load_flows, load_intents
from cxbot.guardrails.base import Guardrail
from cxbot.guardrails.registry import GuardrailDeps, available_guardrails
from cxbot.handoff.summary import HandoffSummary, SummaryWriter
from cxbot.llm import ChatEndpoint, build_chat_model
from cxbot.nlu.intent import IntentClassifier, IntentScorer, TrainedIntentClassifier
from cxbot.nlu.llm import LLMIntentClassifier
from cxbot.nlu.stage import NLUStage
from cxbot.pipeline import Pipeline, clean_message
from cxbot.profiles.store import SQLiteProfileStore
from cxbot.prompts import PromptLibrary, PromptTask
from cxbot.rag.answer import Answerer
from cxbot.rag.ingest import Ingestor, IngestReport, Manifest, Progress
from cxbot.rag.lexical import LexicalIndex
from cxbot.rag.rerank import reranker_from_config
from cxbot.rag.retriever import Retriever
from cxbot.rag.rewrite import QueryRewriter
from cxbot.rag.store import ChromaStore, VectorStore
from cxbot.stream import FinalReply, StreamEvent, TextDelta
from cxbot.types import Channel, Reply

if TYPE_CHECKING:
    from langchain_core.retrievers import BaseRetriever

__all__ = ["Assistant"]


class Assistant:
    """A company's assistant: ``respond`` runs one turn of a conversation.

    Build it with :meth:`from_dir`; every dependency can be injected (embedder, clock,
    chat model, stores) and none is global. Construction reads and validates the project
    files but loads no model; :meth:`warm_up` (or the first turn) does.
    """

    def __init__(
        self,
        root: Path,
        config: CxbotConfig,
        pipeline: Pipeline,
        *,
        vector_store: VectorStore,
        manifest_path: Path,
        calendar_fixture: Path | None = None,
    ) -> None:
        self.root = root
        self.config = config
        self.pipeline = pipeline
        self.deps = pipeline.deps
        self.vector_store = vector_store
        self._manifest_path = manifest_path
        self._calendar_fixture = calendar_fixture
        self._warm = False
        self._warm_lock = threading.Lock()

    @classmethod
    def from_dir(
        cls,
        path: str | Path = ".",
        *,
        embedder: Embedder | None = None,
        clock: Callable[[], datetime] | None = None,
        chat_model: Any = None,
        env: Mapping[str, str] | None = None,
        actions: Mapping[str, Action] | None = None,
        vector_store: VectorStore | None = None,
    ) -> Assistant:
        """Build the assistant of the project in ``path`` (``cxbot.yaml``, flows, prompts…)."""
        root = Path(path).resolve()
        config = load_config(root, env=env)
        prompts = PromptLibrary(root / "prompts")
        prompts.validate()
        all_actions = _actions(root, config, actions)
        flows = load_flows(root / "flows", actions=all_actions)
        intents = load_intents(root / config.nlu.intents_file)
        storage = root / config.storage.dir
        if embedder is None:
            embedder = SentenceTransformerEmbedder.from_config(config.embeddings)
        if chat_model is None:
            chat_model = build_chat_model(config.llm, env)
        # the stages call the model within the turn's deadline, with retries (config.llm)
        llm = ChatEndpoint.from_config(chat_model, config.llm) if chat_model is not None else None
        profiles = SQLiteProfileStore(
            storage / "profiles.sqlite", _fixture(root, config.profiles.fixture, "profiles.fixture")
        )
        calendar_fixture = _fixture(root, config.calendar.fixture, "calendar.fixture")
        calendar = _calendar(config, storage, calendar_fixture)
        deps = TurnDeps(
            config=config,
            embedder=embedder,
            conversations=_conversation_store(config, storage),
            profiles=profiles,
            calendar=calendar,
            prompts=prompts,
            clock=clock or (lambda: datetime.now().astimezone()),
            chat_model=chat_model,
            turn_log=_turn_log(config, storage),
        )
        system_prompt = prompts.render(
            PromptTask.SYSTEM, company=config.company, assistant_name=config.assistant_name
        )
        guard_deps = GuardrailDeps(
            config=config.guardrails,
            root=root,
            system_prompt=system_prompt,
            prompts=prompts,
            embed_many=lambda texts: embedder.embed_documents(texts),
            known_contacts=profiles.all_contacts,
            chat_model=chat_model,
            in_scope_vectors=functools.cache(
                lambda: embedder.embed_documents([t for ts in examples.values() for t in ts])
            ),
        )
        plugins = available_guardrails()
        examples: dict[str, tuple[str, ...]] = {i.name: i.examples for i in intents.intents}
        examples.update({name: spec.examples for name, spec in flows.items()})
        store = vector_store or (
            ChromaStore(url=config.storage.chroma_url)
            if config.storage.chroma_url
            else ChromaStore(storage / "chroma")
        )
        lexical = LexicalIndex(storage / "lexical.sqlite")
        field_vectors: dict[str, Any] = {}
        pipeline = Pipeline(
            deps,
            input_guardrails=[plugins[n].build(guard_deps) for n in config.guardrails.input],
            output_guardrails=[plugins[n].build(guard_deps) for n in config.guardrails.output],
            nlu=NLUStage(
                _intent_classifier(config, examples, embedder, storage, root),
                names=lambda: _entity_names(calendar),
                llm=(
                    LLMIntentClassifier(
                        llm,
                        prompts,
                        examples,
                        {name: spec.description for name, spec in flows.items()},
                    )
                    if config.nlu.llm and llm is not None
                    else None
                ),
            ),
            flows=FlowEngine(flows, all_actions, prompts),
            retriever=Retriever(
                store,
                lexical=lexical,
                hybrid=config.rag.hybrid,
                top_k=config.rag.top_k,
                min_score=config.rag.min_score,
                keyword_weight=config.rag.keyword_weight,
                reranker=reranker_from_config(config.rag.reranker, root=root),
                rerank_candidates=config.rag.rerank_candidates,
            ),
            rewriter=QueryRewriter(prompts, chat_model=llm)
            if config.rag.rewrite_follow_ups
            else None,
            answerer=Answerer(
                embedder,
                prompts,
                chat_model=llm,
                max_sentences=config.rag.max_sentences,
                system_prompt=system_prompt,
            ),
            summaries=SummaryWriter(prompts, llm),
            profile_vectors=field_vectors,
        )
        return cls(
            root,
            config,
            pipeline,
            vector_store=store,
            manifest_path=storage / "ingest.sqlite",
            calendar_fixture=calendar_fixture,
        )

    # -- lifecycle -----------------------------------------------------------------------
    def warm_up(self) -> None:
        """Load the model, embed the intent examples and attack set, open the vector store."""
        with self._warm_lock:
            if not self._warm:
                self._warm_up()

    def _warm_up(self) -> None:
        embedder = self.deps.embedder
        warm = getattr(embedder, "warm_up", None)
        if callable(warm):
            warm()
        self.pipeline.nlu.warm_up()
        guards: list[Guardrail] = [
            *self.pipeline.input_guardrails,
            *self.pipeline.output_guardrails,
        ]
        for guard in guards:
            guard.warm_up()
        descriptions = self.config.profiles.descriptions
        if descriptions:
            keys = list(descriptions)
            vectors = embedder.embed_documents([descriptions[k] for k in keys])
            self.pipeline.profile_vectors = dict(zip(keys, vectors, strict=True))
        self._warm = True

    def ingest(self, progress: Progress | None = None) -> IngestReport:
        """Bring the vector store in line with the knowledge folder (incremental)."""
        manifest = Manifest(self._manifest_path)
        try:
            return Ingestor(
                self.root / self.config.knowledge.dir,
                self.vector_store,
                self.deps.embedder,
                manifest,
                lexical=self.pipeline.retriever.lexical,
                chunk_size=self.config.knowledge.chunk_size,
                chunk_overlap=self.config.knowledge.chunk_overlap,
                batch_chunks=self.config.knowledge.batch_chunks,
            ).run(progress)
        finally:
            manifest.close()

    def isolated(
        self, storage: str | Path, *, clock: Callable[[], datetime] | None = None
    ) -> Assistant:
        """A twin sharing models, knowledge and profiles, with its own conversations and
        calendar under ``storage`` (and its own clock): for evals and tests."""
        self.warm_up()
        storage = Path(storage)
        deps = replace(
            self.deps,
            conversations=SQLiteConversationStore(storage / "conversations.sqlite"),
            calendar=SQLiteCalendar(storage / "calendar.sqlite", self._calendar_fixture),
            clock=clock or self.deps.clock,
            turn_log=_turn_log(self.config, storage),
        )
        return self._twin(deps)

    def with_config(self, config: CxbotConfig) -> Assistant:
        """A twin whose turns read ``config`` (e.g. other business hours), sharing models,
        stores and knowledge: for evals and tests."""
        self.warm_up()
        return self._twin(replace(self.deps, config=config))

    def _twin(self, deps: TurnDeps) -> Assistant:
        twin = Assistant(
            self.root,
            deps.config,
            self.pipeline.with_deps(deps),
            vector_store=self.vector_store,
            manifest_path=self._manifest_path,
            calendar_fixture=self._calendar_fixture,
        )
        twin._warm = True
        return twin

    # -- turns ---------------------------------------------------------------------------
    def respond(
        self,
        conversation_id: str,
        text: str,
        *,
        customer_id: str | None = None,
        message_id: str | None = None,
        authenticated: bool | None = None,
        channel: Channel = "web",
    ) -> Reply:
        """Run one turn: the customer's ``text`` in ``conversation_id`` → the assistant's reply.

        ``message_id`` is the client's id for this message: a retry with the same id (after
        a timeout, or on another worker) gets the reply of the first attempt that was
        stored, and the turn is not run again; the same id with another text raises
        :class:`~cxbot.errors.InvalidMessage`. Turns of one conversation run one at a time,
        in every process sharing the conversation store.

        ``authenticated`` says whether the caller signed ``customer_id`` in (default:
        ``identity.trust_customer_id``); if not, the id is a claim, and account answers
        and actions wait until the customer verifies it (date of birth, postcode).
        ``channel`` (web, sms, whatsapp, voice, email) decides ``reply.rendered``; the
        customer's latest conversation on another channel, when they are known, continues
        in this one.

        Raises :class:`~cxbot.errors.TurnError` for unusable input (nothing is stored).
        """
        return self._turn(
            conversation_id,
            text,
            customer_id,
            None,
            message_id,
            authenticated=authenticated,
            channel=channel,
        )

    def _turn(
        self,
        conversation_id: str,
        text: str,
        customer_id: str | None,
        on_text: Callable[[str], None] | None,
        message_id: str | None = None,
        *,
        authenticated: bool | None = None,
        channel: Channel = "web",
    ) -> Reply:
        self.warm_up()
        store = self.deps.conversations
        with store.lock(conversation_id):
            for attempt in range(3):
                if message_id is not None:
                    kept = self._kept_reply(store, conversation_id, text, message_id)
                    if kept is not None:
                        return self._present(conversation_id, kept, channel)
                try:
                    reply = self.pipeline.run(
                        conversation_id,
                        text,
                        customer_id,
                        authenticated=authenticated,
                        on_text=on_text,
                        message_id=message_id,
                    )
                    return self._present(conversation_id, reply, channel)
                except ConcurrentUpdate:
                    if attempt == 2:
                        raise
                    on_text = None  # a retried turn is not streamed again: see astream
        raise AssertionError("unreachable")

    def _kept_reply(
        self, store: ConversationStore, conversation_id: str, text: str, message_id: str
    ) -> Reply | None:
        """The stored reply to ``message_id``, if the message was answered before."""
        from cxbot.conversation.receipts import message_digest, reply_from_json

        receipt = store.receipt(conversation_id, message_id)
        if receipt is None:
            return None
        cleaned = clean_message(text, self.config.limits.max_message_chars)
        if message_digest(cleaned) != receipt.digest:
            raise InvalidMessage(
                f"message id {message_id!r} was used for another message in this conversation"
            )
        return reply_from_json(receipt.reply)

    async def arespond(
        self,
        conversation_id: str,
        text: str,
        *,
        customer_id: str | None = None,
        message_id: str | None = None,
        authenticated: bool | None = None,
        channel: Channel = "web",
    ) -> Reply:
        """:meth:`respond` without blocking the event loop."""
        return await asyncio.to_thread(
            self.respond,
            conversation_id,
            text,
            customer_id=customer_id,
            message_id=message_id,
            authenticated=authenticated,
            channel=channel,
        )

    async def astream(
        self,
        conversation_id: str,
        text: str,
        *,
        customer_id: str | None = None,
        message_id: str | None = None,
        authenticated: bool | None = None,
        channel: Channel = "web",
    ) -> AsyncIterator[StreamEvent]:
        """:meth:`arespond`, streamed: :class:`~cxbot.stream.TextDelta` events as the reply
        becomes safe to show, then one :class:`~cxbot.stream.FinalReply` with the stored
        reply.

        A RAG answer written by the chat model arrives sentence by sentence, each once the
        answer so far passes the output guardrails. An answer they block stops there: the
        final event carries the blocked-output reply, with ``replace_shown=True`` if part of
        the answer was shown. Every other reply (flows, small talk, handoff, the offline
        answer, "I don't know", a blocked reply when nothing was shown) and any text the turn
        adds after the answer arrives as one delta just before the final event.
        Turns of one conversation run one at a time. A caller that stops iterating does not
        cancel the turn: it runs to the end and is stored.

        Raises :class:`~cxbot.errors.TurnError` for unusable input, before any event.
        """
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | None] = asyncio.Queue()

        def put(piece: str | None) -> None:
            with contextlib.suppress(RuntimeError):  # the caller's loop has closed
                loop.call_soon_threadsafe(pieces.put_nowait, piece)

        def work() -> Reply:
            try:
                return self._turn(
                    conversation_id,
                    text,
                    customer_id,
                    put,
                    message_id,
                    authenticated=authenticated,
                    channel=channel,
                )
            finally:
                put(None)

        task = asyncio.ensure_future(asyncio.to_thread(work))
        try:
            shown = ""
            while (piece := await pieces.get()) is not None:
                shown += piece
                yield TextDelta(piece)
            reply = await task
        finally:
            if not task.done():  # the caller left early: the turn finishes on its own
                task.add_done_callback(_ignore_result)
        if reply.text.startswith(shown):
            if reply.text != shown:
                yield TextDelta(reply.text[len(shown) :])
            yield FinalReply(reply)
        else:
            yield FinalReply(reply, replace_shown=True)

    def _present(self, conversation_id: str, reply: Reply, channel: Channel) -> Reply:
        """``reply`` rendered for ``channel``, with the flow's choices (or yes and no before
        a confirmation) as its quick replies."""
        options: tuple[str, ...] = ()
        if reply.route == "flow":
            state = self.deps.conversations.load(conversation_id)
            if state.verification is None:
                ctx = ActionContext(
                    customer_id=state.customer_id,
                    now=self.deps.clock().replace(tzinfo=None),
                    calendar=self.deps.calendar,
                )
                options = self.pipeline.flows.quick_replies(state, ctx)
        rendered = render(reply.text, channel, self.config.channels, quick_replies=options)
        return replace(reply, rendered=rendered)

    def as_retriever(self, *, k: int | None = None, internal: bool = False) -> BaseRetriever:
        """This assistant's knowledge search as a LangChain retriever (same embedder, keyword
        index and filters as its turns): see :class:`cxbot.rag.langchain.KnowledgeRetriever`.

        ``k`` passages at most (default ``rag.top_k``); ``internal`` also searches
        staff-only chunks, which customers never see.
        """
        from cxbot.rag.langchain import KnowledgeRetriever

        return KnowledgeRetriever(
            retriever=self.pipeline.retriever,
            embedder=self.deps.embedder,
            k=k,
            internal=internal,
        )

    def summarise_transcript(
        self,
        conversation_id: str,
        transcript: Sequence[tuple[str, str, str | None]],
        *,
        reason: str = "customer_request",
        customer_id: str | None = None,
        slots: Mapping[str, str] | None = None,
    ) -> HandoffSummary:
        """A handoff summary of a conversation held elsewhere (e.g. by Rasa).

        ``transcript`` is ``(speaker, text, intent)`` with speaker ``customer`` or
        ``assistant``; customer messages are PII-redacted by the input guardrails first.
        """
        self.warm_up()
        events: list[Event] = []
        for speaker, text, intent in transcript:
            if speaker == "customer":
                events.append(UserUttered(self.pipeline.redact(text), intent))
            else:
                events.append(BotUttered(text, "external"))
        profile = self.deps.profiles.get(customer_id) if customer_id else None
        summary = self.pipeline.summaries.run(
            state=ConversationState(conversation_id=conversation_id, customer_id=customer_id),
            events=events,
            reason=reason,
            queue=self.config.handoff.queue,
            profile=profile,
            now=self.deps.clock(),
        )
        return summary.model_copy(update={"slots": dict(slots or {})}) if slots else summary

    def resume(
        self,
        conversation_id: str,
        *,
        note: str | None = None,
        slots: Mapping[str, str] | None = None,
        agent_id: str | None = None,
    ) -> None:
        """A human agent hands the conversation back to the assistant.

        ``slots`` are corrections to the task in progress, validated like the customer's
        input; the assistant then asks for what the task needs next, so the customer's next
        message carries on where it stopped. Raises
        :class:`~cxbot.errors.UnknownConversation` for a conversation that never started and
        :class:`~cxbot.errors.InvalidSlot` for a slot or value the task does not accept
        (nothing is stored then).
        """
        from cxbot.flows.actions import ActionContext
        from cxbot.handoff.handback import hand_back

        self.warm_up()
        with self.deps.conversations.lock(conversation_id):
            for attempt in range(3):
                state = self.deps.conversations.load(conversation_id)
                if state.version == 0:
                    raise UnknownConversation(
                        f"no conversation with id {conversation_id!r} in the conversation store"
                    )
                ctx = ActionContext(
                    customer_id=state.customer_id,
                    now=self.deps.clock().replace(tzinfo=None),
                    calendar=self.deps.calendar,
                )
                events = hand_back(
                    state,
                    flows=self.pipeline.flows,
                    ctx=ctx,
                    note=note,
                    slots=slots,
                    agent_id=agent_id,
                    entity_names=self.pipeline.nlu.names,
                )
                after = apply_all(state, events, history_limit=self.config.limits.history_turns)
                try:
                    self.deps.conversations.commit(after, events)
                    return
                except ConcurrentUpdate:
                    if attempt == 2:
                        raise

    def state(self, conversation_id: str) -> ConversationState:
        return self.deps.conversations.load(conversation_id)

    def events(self, conversation_id: str) -> list[Event]:
        return self.deps.conversations.events(conversation_id)

    def audit(self, conversation_id: str) -> list[tuple[int, VerdictRecord]]:
        """Every guardrail verdict of the conversation with its turn number, in order: all
        verdicts ("allow" included) of turns the turn log recorded, and the block and
        rewrite verdicts in the events of turns it did not (``storage.turn_log`` off)."""
        recorded = self.deps.turn_log.verdicts(conversation_id) if self.deps.turn_log else {}
        audited: list[tuple[int, VerdictRecord]] = []
        done: set[int] = set()  # turns whose record gave their verdicts
        turn = 0  # input verdicts come before the turn's UserUttered, output verdicts after
        for event in self.deps.conversations.events(conversation_id):
            if isinstance(event, UserUttered):
                turn += 1
                if turn in recorded:
                    audited.extend((turn, v) for v in recorded.pop(turn))
                    done.add(turn)
            elif isinstance(event, GuardrailTriggered):
                number = turn + 1 if event.stage == "input" else max(turn, 1)
                if number in recorded or number in done:
                    continue  # the record has this turn's verdicts
                audited.append(
                    (
                        number,
                        VerdictRecord(
                            event.stage, event.guardrail, event.action, event.reason, event.score
                        ),
                    )
                )
        audited.extend((t, v) for t, verdicts in sorted(recorded.items()) for v in verdicts)
        return audited

    def close(self) -> None:
        """Close this thread's store connections (they reopen on next use)."""
        stores = (
            self.deps.conversations,
            self.deps.profiles,
            self.deps.calendar,
            self.deps.turn_log,
        )
        for store in stores:
            close = getattr(store, "close", None)
            if callable(close):
                close()


def _ignore_result(task: asyncio.Future[Any]) -> None:
    """Collect the outcome of a turn nobody waits for any more (no "never retrieved" log)."""
    if not task.cancelled():
        task.exception()


def _conversation_store(config: CxbotConfig, storage: Path) -> ConversationStore:
    """Redis when ``storage.redis_url`` is set (several workers), else SQLite under dir."""
    settings = config.storage
    if settings.redis_url:
        from cxbot.conversation.redis_store import RedisConversationStore

        return RedisConversationStore(
            settings.redis_url,
            prefix=settings.redis_prefix,
            lock_ttl_s=settings.lock_ttl_s,
            message_ttl_s=settings.message_ttl_s,
        )
    return SQLiteConversationStore(
        storage / "conversations.sqlite", message_ttl_s=settings.message_ttl_s
    )


def _calendar(config: CxbotConfig, storage: Path, fixture: Path | None) -> CalendarBackend:
    """The advisors' calendar: Redis when ``storage.redis_url`` is set, else SQLite."""
    settings = config.storage
    if settings.redis_url:
        from cxbot.flows.actions.redis_calendar import RedisCalendar

        return RedisCalendar(settings.redis_url, fixture, prefix=settings.redis_prefix)
    return SQLiteCalendar(storage / "calendar.sqlite", fixture)


def _turn_log(config: CxbotConfig, storage: Path) -> SQLiteTurnLog | None:
    """The turn records beside the conversations (``storage.turn_log``)."""
    return SQLiteTurnLog(storage / "conversations.sqlite") if config.storage.turn_log else None


def _fixture(root: Path, value: str | None, key: str) -> Path | None:
    if value is None:
        return None
    path = root / value
    if not path.is_file():
        raise ConfigError(
            f"{key}: file {value!r} not found",
            file=root / CONFIG_FILE,
            fix=f"point {key} at an existing file relative to {root}",
        )
    return path


def _intent_classifier(
    config: CxbotConfig,
    examples: Mapping[str, Sequence[str]],
    embedder: Embedder,
    storage: Path,
    root: Path,
) -> IntentScorer:
    nlu = config.nlu
    if nlu.classifier == "examples":
        return IntentClassifier(
            examples,
            embedder,
            threshold=0.45 if nlu.oos_threshold is None else nlu.oos_threshold,
            neighbours=nlu.neighbours,
        )
    from cxbot.nlu.model import TrainingSettings

    return TrainedIntentClassifier(
        examples,
        embedder,
        root / nlu.model_dir if nlu.model_dir else storage / "nlu",
        threshold=nlu.oos_threshold,
        settings=TrainingSettings(tune_layers=nlu.tune_layers),
        encoder=config.embeddings.model,
        min_similarity=nlu.min_similarity,
        neighbours=nlu.neighbours,
    )


def _actions(
    root: Path, config: CxbotConfig, extra: Mapping[str, Action] | None
) -> Mapping[str, Action]:
    """Built-in actions, the caller's, and rasa-sdk actions when ``rasa`` is configured."""
    table: dict[str, Action] = {**builtin_actions(), **(extra or {})}
    rasa = config.rasa
    if not (rasa.actions_package or rasa.action_server):
        return table
    import sys
    from collections import ChainMap

    from cxbot.flows.rasa import RasaActionRunner, RasaActions

    if rasa.actions_package and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    runner = RasaActionRunner(
        package=rasa.actions_package, url=rasa.action_server, timeout_s=rasa.timeout_s
    )
    return ChainMap(table, RasaActions(runner))  # type: ignore[arg-type]


def _entity_names(calendar: Any) -> dict[str, list[str]]:
    names = {"branch": calendar.branches()}
    advisors = getattr(calendar, "advisors", None)
    if callable(advisors):
        names["advisor"] = advisors()
    return names
