"""The HTTP API of ``cxbot serve``: chat for widgets, agent assist for human agents.

FastAPI over one :class:`~cxbot.Assistant`; every route but the health checks and the
widget's static files needs ``Authorization: Bearer`` (:mod:`cxbot.server.auth`). Server-sent
events are written by hand (``text/event-stream`` over a streaming response): two event
kinds and a heartbeat comment do not need another dependency.

Routes: ``/healthz``, ``/readyz``; ``POST /v1/sessions``; a conversation's ``messages``
(JSON) and ``messages/stream`` (SSE), ``summary``, ``assist``, ``events`` (SSE of assist
updates), ``observe``; ``GET /v1/conversations``; ``POST /v1/admin/ingest``; ``/widget/``.
A streamed turn that fails after its first event ends with an ``error`` event.

Several workers: with ``storage.redis_url`` (conversations, locks, message ids, calendar)
and ``storage.chroma_url`` set, and one ``CXBOT_SESSION_SECRET`` for all, any worker takes
any conversation's next message; a message's ``message_id`` makes a client's retry safe on
another worker. What stays per process: assist updates reach the agents listening to the
process that took the customer's message (a shared channel such as Redis pub/sub would be
needed to share that stream), and ``GET /v1/conversations`` lists the conversations opened
through this server's storage folder (``server.sqlite``, shared by workers on one host).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, assert_never

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from cxbot._sqlite import ThreadLocalSQLite
from cxbot.assist import AgentAssist, AssistSuggestions
from cxbot.config import CxbotConfig, ServerConfig
from cxbot.conversation.events import CustomerIdentified, Event, HandoffRequested
from cxbot.conversation.reducer import apply_all
from cxbot.conversation.state import ConversationState
from cxbot.errors import BackendError, CxbotError, TurnError, UnknownConversation, UnknownCustomer
from cxbot.server.auth import AccessDenied, Authenticator, NotAuthenticated, Principal
from cxbot.stream import FinalReply, StreamEvent, TextDelta
from cxbot.types import Channel

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from cxbot.assistant import Assistant
    from cxbot.types import Reply

__all__ = ["STATIC_DIR", "create_app"]

log = logging.getLogger("cxbot.server")

STATIC_DIR = Path(__file__).with_name("static")
"""The widget's files, served under ``/widget/``."""


# -- request bodies -----------------------------------------------------------------------
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionIn(_Body):
    customer_id: str | None = Field(None, description="The customer, when the site knows them.")


class MessageIn(_Body):
    text: str = Field(description="The customer's message.")
    customer_id: str | None = Field(
        None,
        description=(
            "A customer the session was not opened for: a claim they verify (date of birth, "
            "postcode) before account answers; a session's own customer is authenticated."
        ),
    )
    channel: Channel = Field(
        "web", description="Where the customer wrote: decides the reply's `rendered` form."
    )
    message_id: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description=(
            "The client's id for this message. A retry with the same id (after a timeout, or "
            "to another worker) gets the same reply and the turn runs once; the same id with "
            "another text is rejected (422)."
        ),
    )


class ObserveIn(_Body):
    speaker: Literal["customer", "agent"]
    text: str


class SessionOut(BaseModel):
    conversation_id: str
    token: str = Field(description="Bearer token for this conversation only (customer role).")


class CitationJSON(BaseModel):
    source: str
    title: str
    snippet: str
    score: float


class ReplyOut(BaseModel):
    text: str
    route: str
    intent: str | None
    citations: list[CitationJSON]
    handoff: dict[str, Any] | None = Field(description="The handoff summary, if handed over.")
    rendered: dict[str, Any] | None = Field(
        None, description="The reply for its channel: `channel`, `parts` to send, `buttons`."
    )


class ConversationOut(BaseModel):
    conversation_id: str
    queue: str
    handed_off: bool
    last_message_at: float | None = Field(description="Unix time of the last message.")


class IngestOut(BaseModel):
    added: list[str]
    updated: list[str]
    removed: list[str]
    unchanged: int
    chunks_embedded: int
    chunks_total: int
    seconds: float
    errors: list[str]


def _reply_json(reply: Reply) -> dict[str, Any]:
    return {
        "text": reply.text,
        "route": reply.route,
        "intent": reply.intent,
        "citations": [dataclasses.asdict(c) for c in reply.citations],
        "handoff": reply.handoff.model_dump(mode="json") if reply.handoff else None,
        "rendered": dataclasses.asdict(reply.rendered) if reply.rendered else None,
    }


def _sse(event: str, data: Mapping[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


# -- body limit ---------------------------------------------------------------------------
class BodyLimit:
    """Rejects a request body over ``limit`` bytes with 413 before anything parses it,
    whether or not the request declares its length."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._reject(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._reject(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"the request body is over {self.limit} bytes (server.max_body_bytes)"},
            status_code=413,
        )
        await response(scope, receive, send)


# -- conversations the server opened ------------------------------------------------------
class _Registry:
    """The conversations opened through the API and when each last had a message."""

    def __init__(self, path: Path) -> None:
        self._conn = ThreadLocalSQLite(path)
        self._conn().execute(
            "CREATE TABLE IF NOT EXISTS conversations (id TEXT PRIMARY KEY, "
            "customer_id TEXT, created_at REAL NOT NULL, last_message_at REAL)"
        )

    def add(self, conversation_id: str, customer_id: str | None) -> None:
        self._conn().execute(
            "INSERT OR IGNORE INTO conversations (id, customer_id, created_at) VALUES (?, ?, ?)",
            (conversation_id, customer_id, time.time()),
        )

    def touch(self, conversation_id: str) -> None:
        self._conn().execute(
            "INSERT INTO conversations (id, created_at, last_message_at) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET last_message_at = excluded.last_message_at",
            (conversation_id, time.time(), time.time()),
        )

    def all(self) -> list[tuple[str, float | None]]:
        rows = self._conn().execute(
            "SELECT id, last_message_at FROM conversations "
            "ORDER BY COALESCE(last_message_at, created_at) DESC"
        )
        return [(str(cid), at) for cid, at in rows]


# -- assist updates -----------------------------------------------------------------------
class _AssistHub:
    """Fresh suggestions to every agent listening to a conversation, after each customer
    message (computed only when someone listens)."""

    def __init__(self, assist: AgentAssist) -> None:
        self.assist = assist
        self._listeners: dict[str, set[asyncio.Queue[str]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def listen(self, conversation_id: str) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._listeners.setdefault(conversation_id, set()).add(queue)
        return queue

    def leave(self, conversation_id: str, queue: asyncio.Queue[str]) -> None:
        listeners = self._listeners.get(conversation_id)
        if listeners is not None:
            listeners.discard(queue)
            if not listeners:
                del self._listeners[conversation_id]

    def customer_spoke(self, conversation_id: str) -> None:
        if not self._listeners.get(conversation_id):
            return
        task = asyncio.create_task(self._publish(conversation_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, conversation_id: str) -> None:
        suggestions = await asyncio.to_thread(self.assist.suggest, conversation_id)
        event = _sse("assist", suggestions.model_dump(mode="json"))
        for queue in self._listeners.get(conversation_id, ()):
            queue.put_nowait(event)


_bearer = HTTPBearer(auto_error=False, description="An API key or a session token.")


async def _caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise NotAuthenticated("missing Authorization: Bearer header")
    auth: Authenticator = request.app.state.auth
    return auth.authenticate(f"Bearer {credentials.credentials}")


Caller = Annotated[Principal, Depends(_caller)]
"""The authenticated caller of a request."""


# -- the app ------------------------------------------------------------------------------
def create_app(
    assistant: Assistant,
    config: CxbotConfig | ServerConfig | None = None,
    *,
    env: Mapping[str, str] | None = None,
    heartbeat_s: float = 15.0,
) -> FastAPI:
    """The HTTP API over ``assistant``; ``config`` defaults to the assistant's ``server``
    section; key and session secrets are read from ``env`` (default: the environment).

    Raises :class:`~cxbot.errors.ConfigError` when a configured key's variable is unset.
    """
    if config is None:
        config = assistant.config
    server = config.server if isinstance(config, CxbotConfig) else config
    auth = Authenticator(server, os.environ if env is None else env)
    if auth.ephemeral_secret:
        log.warning(
            "%s is not set: session tokens are signed with a random secret and end when "
            "the server restarts",
            server.session_secret_env,
        )
    assist = AgentAssist(assistant)
    hub = _AssistHub(assist)
    registry = _Registry(assistant.root / assistant.config.storage.dir / "server.sqlite")
    store = assistant.deps.conversations
    ready = asyncio.Event()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def warm() -> None:
            await asyncio.to_thread(assistant.warm_up)
            ready.set()

        task = asyncio.create_task(warm())
        yield
        if not task.done():
            await asyncio.shield(task)

    app = FastAPI(
        title="cxbot",
        summary="Chat for customers, agent assist for human agents.",
        version="1",
        lifespan=lifespan,
    )
    app.state.auth = auth
    app.add_middleware(BodyLimit, limit=server.max_body_bytes)
    if server.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(server.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )

    def error(status: int, exc: Exception, **headers: str) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers or None)

    handlers: dict[type[Exception], Callable[[Request, Exception], Awaitable[JSONResponse]]] = {}

    def handle(kind: type[Exception], status: int, **headers: str) -> None:
        async def handler(request: Request, exc: Exception) -> JSONResponse:
            return error(status, exc, **headers)

        handlers[kind] = handler

    handle(NotAuthenticated, 401, **{"WWW-Authenticate": "Bearer"})
    handle(AccessDenied, 403)
    handle(UnknownConversation, 404)
    handle(TurnError, 422)
    handle(BackendError, 503)
    for kind, handler in handlers.items():
        app.add_exception_handler(kind, handler)

    async def invalid_body(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return JSONResponse({"detail": problems}, status_code=422)

    app.add_exception_handler(RequestValidationError, invalid_body)

    async def conversation(
        cid: str, *, events: bool = True
    ) -> tuple[ConversationState, list[Event]]:
        """The state (and, if ``events``, the event log) of a known conversation."""

        def load() -> tuple[ConversationState, list[Event]]:
            state = store.load(cid)
            if state.version == 0:
                raise UnknownConversation(f"no conversation {cid!r}")
            return state, store.events(cid) if events and state.handed_off else []

        return await asyncio.to_thread(load)

    def queue_of(state: ConversationState, events: list[Event]) -> str:
        if state.handed_off:
            for event in reversed(events):
                if isinstance(event, HandoffRequested):
                    return event.queue
        return server.default_queue

    async def for_agent(who: Principal, cid: str, *roles: Literal["agent", "supervisor"]) -> None:
        """An agent of the conversation's queue (or a supervisor) on a known conversation."""
        who.require(*roles)
        state, events = await conversation(cid)
        who.may_see_queue(queue_of(state, events))

    async def for_customer(who: Principal, cid: str, body: MessageIn) -> str | None:
        """The session's own conversation; returns the customer id of the turn."""
        who.require("customer")
        who.may_use(cid)
        await conversation(cid, events=False)
        if who.customer_id and body.customer_id and body.customer_id != who.customer_id:
            raise AccessDenied("the session was opened for another customer")
        return who.customer_id or body.customer_id

    # -- health --------------------------------------------------------------------------
    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        if not ready.is_set():
            return JSONResponse({"status": "warming up"}, status_code=503)

        def probe() -> None:
            store.load("readyz-probe")
            assistant.vector_store.count()

        try:
            await asyncio.wait_for(asyncio.to_thread(probe), timeout=5)
        except Exception as exc:  # any failure of a store means not ready
            return JSONResponse({"status": f"store unavailable: {exc}"}, status_code=503)
        return JSONResponse({"status": "ready"})

    # -- customers -----------------------------------------------------------------------
    @app.post("/v1/sessions", tags=["customer"])
    async def open_session(who: Caller, body: SessionIn | None = None) -> SessionOut:
        """A new conversation and a token for it alone."""
        who.require("customer")
        customer = body.customer_id if body else None
        if who.customer_id is not None:
            customer = customer or who.customer_id
            if customer != who.customer_id:
                raise AccessDenied("the session was opened for another customer")
        cid = "web-" + secrets.token_urlsafe(12)

        def start() -> None:
            if customer is not None and assistant.deps.profiles.get(customer) is None:
                raise UnknownCustomer(f"no customer with id {customer!r} in the profile store")
            events: list[Event] = [CustomerIdentified(customer)] if customer else []
            store.commit(apply_all(ConversationState(conversation_id=cid), events), events)
            registry.add(cid, customer)

        await asyncio.to_thread(start)
        return SessionOut(conversation_id=cid, token=auth.issue(cid, customer))

    @app.post("/v1/conversations/{cid}/messages", tags=["customer"])
    async def message(cid: str, body: MessageIn, who: Caller) -> ReplyOut:
        """One turn: the customer's message → the assistant's reply."""
        customer = await for_customer(who, cid, body)
        reply = await assistant.arespond(
            cid,
            body.text,
            customer_id=customer,
            message_id=body.message_id,
            authenticated=who.customer_id is not None,
            channel=body.channel,
        )
        await asyncio.to_thread(registry.touch, cid)
        hub.customer_spoke(cid)
        return ReplyOut.model_validate(_reply_json(reply))

    @app.post(
        "/v1/conversations/{cid}/messages/stream",
        tags=["customer"],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def message_stream(cid: str, body: MessageIn, who: Caller) -> StreamingResponse:
        """One turn, streamed: ``delta`` events (``{"text"}``) then one ``final`` event
        (``{"reply", "replace_shown"}``)."""
        customer = await for_customer(who, cid, body)
        events = assistant.astream(
            cid,
            body.text,
            customer_id=customer,
            message_id=body.message_id,
            authenticated=who.customer_id is not None,
            channel=body.channel,
        )
        first = await anext(events)  # unusable input fails here, before the stream starts

        async def write() -> AsyncIterator[str]:
            async def all_events() -> AsyncIterator[StreamEvent]:
                yield first
                async for event in events:
                    yield event

            try:
                async for event in all_events():
                    yield await frame(event)
            except CxbotError as exc:  # headers are sent: the failure is the last event
                log.exception("streamed turn of %s failed", cid)
                yield _sse("error", {"detail": str(exc)})

        async def frame(event: StreamEvent) -> str:
            match event:
                case TextDelta():
                    return _sse("delta", {"text": event.text})
                case FinalReply():
                    await asyncio.to_thread(registry.touch, cid)
                    hub.customer_spoke(cid)
                    return _sse(
                        "final",
                        {"reply": _reply_json(event.reply), "replace_shown": event.replace_shown},
                    )
                case _:
                    assert_never(event)

        return StreamingResponse(write(), media_type="text/event-stream", headers=_SSE_HEADERS)

    # -- agents --------------------------------------------------------------------------
    @app.get("/v1/conversations", tags=["agent"])
    async def conversations(who: Caller) -> list[ConversationOut]:
        """An agent's queues' conversations; every conversation for a supervisor."""
        who.require("agent", "supervisor")

        def listing() -> list[ConversationOut]:
            out = []
            for cid, at in registry.all():
                state = store.load(cid)
                if state.version == 0:
                    continue
                queue = queue_of(state, store.events(cid) if state.handed_off else [])
                if who.role == "agent" and queue not in who.queues:
                    continue
                out.append(
                    ConversationOut(
                        conversation_id=cid,
                        queue=queue,
                        handed_off=state.handed_off,
                        last_message_at=at,
                    )
                )
            return out

        return await asyncio.to_thread(listing)

    @app.get("/v1/conversations/{cid}/summary", tags=["agent"])
    async def summary(cid: str, who: Caller) -> dict[str, Any]:
        """The handoff summary (or, before a handoff, one written now)."""
        await for_agent(who, cid, "agent", "supervisor")
        written = await asyncio.to_thread(assist.summary, cid)
        return written.model_dump(mode="json")

    @app.get("/v1/conversations/{cid}/assist", tags=["agent"])
    async def suggestions(cid: str, who: Caller) -> AssistSuggestions:
        await for_agent(who, cid, "agent", "supervisor")
        return await asyncio.to_thread(assist.suggest, cid)

    @app.get(
        "/v1/conversations/{cid}/events",
        tags=["agent"],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def assist_events(cid: str, who: Caller) -> StreamingResponse:
        """``assist`` events with fresh suggestions after each customer message; a comment
        line every 15 s keeps the connection open."""
        await for_agent(who, cid, "agent", "supervisor")

        async def write() -> AsyncIterator[str]:
            queue = hub.listen(cid)
            try:
                yield ": listening\n\n"
                while True:
                    try:
                        yield await asyncio.wait_for(queue.get(), timeout=heartbeat_s)
                    except TimeoutError:
                        yield ": heartbeat\n\n"
            finally:
                hub.leave(cid, queue)

        return StreamingResponse(write(), media_type="text/event-stream", headers=_SSE_HEADERS)

    @app.post("/v1/conversations/{cid}/observe", tags=["agent"], status_code=204)
    async def observe(cid: str, body: ObserveIn, who: Caller) -> None:
        """Record a message of a conversation a human answers."""
        await for_agent(who, cid, "agent")
        await asyncio.to_thread(assist.observe, cid, body.speaker, body.text)
        await asyncio.to_thread(registry.touch, cid)
        if body.speaker == "customer":
            hub.customer_spoke(cid)

    # -- admin ---------------------------------------------------------------------------
    @app.post("/v1/admin/ingest", tags=["admin"])
    async def ingest(who: Caller) -> IngestOut:
        who.require("admin")
        report = await asyncio.to_thread(assistant.ingest)
        return IngestOut(
            added=list(report.added),
            updated=list(report.updated),
            removed=list(report.removed),
            unchanged=report.unchanged,
            chunks_embedded=report.chunks_embedded,
            chunks_total=report.chunks_total,
            seconds=report.seconds,
            errors=[str(e) for e in report.errors],
        )

    if STATIC_DIR.is_dir():
        app.mount("/widget", StaticFiles(directory=STATIC_DIR, html=True), name="widget")
    return app
