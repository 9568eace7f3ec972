"""The chat model: a LangChain ``ChatOpenAI`` for any OpenAI-compatible endpoint, or ``None``;
and :class:`ChatEndpoint`, the one way the stages call it.

With no endpoint configured the assistant runs offline (extractive answers, template
summaries). The API key is read from the environment variable the config names.

A slow or failing endpoint never costs a turn its reply. :class:`ChatEndpoint` gives each
request a timeout (``llm.timeout_s``), retries timeouts, lost connections, 5xx and 429
answers with exponential backoff and jitter (``tenacity``; ``llm.max_retries``,
``llm.backoff_s``) and stops in time for the turn to end by its deadline (``llm.deadline_s``
from the start of the turn, less ``llm.offline_reserve_s`` for what follows). When it gives
up it raises :class:`~cxbot.errors.LLMUnavailable` and records a
:class:`~cxbot.conversation.events.Degraded` event in the turn's :class:`LLMBudget`; the
stage that asked answers offline and the pipeline stores the events with the turn. Once the
endpoint has failed in a turn, later requests of that turn are not sent (``skipped``).

The budget of the running turn is held in a context variable that
:meth:`LLMBudget.active` sets for the turn: the stages that call the model (answerer,
query rewriter, intent classifier, summary writer) also serve outside turns (agent assist),
where a call is bounded by its own timeout and retries alone.
"""

from __future__ import annotations

import contextvars
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from cxbot.config import LLMConfig
from cxbot.conversation.events import Degraded
from cxbot.errors import LLMUnavailable

__all__ = [
    "ChatEndpoint",
    "ErrorKind",
    "LLMBudget",
    "build_chat_model",
    "endpoint_for",
]

ErrorKind = Literal[
    "timeout", "connection", "server_error", "rate_limited", "rejected", "error", "deadline"
]
"""What went wrong with one request; the first four are retried."""

_RETRIED: frozenset[str] = frozenset({"timeout", "connection", "server_error", "rate_limited"})
MIN_ATTEMPT_S = 0.05
"""A request is not started with less time than this left before the deadline."""
BACKOFF_MAX_S = 4.0
"""The longest wait between two attempts."""


def build_chat_model(config: LLMConfig, env: Mapping[str, str] | None = None) -> Any:
    """A ``BaseChatModel`` for ``config``, or ``None`` when no endpoint is configured.

    The client makes no retries of its own: :class:`ChatEndpoint` retries, within the
    turn's deadline.
    """
    if not config.enabled:
        return None
    from langchain_openai import ChatOpenAI

    env = os.environ if env is None else env
    return ChatOpenAI(
        base_url=config.base_url,
        model=config.model or "",
        api_key=env.get(config.api_key_env) or "not-set",  # type: ignore[arg-type]
        temperature=config.temperature,
        timeout=config.timeout_s,
        max_retries=0,
    )


@dataclass(slots=True)
class LLMBudget:
    """The chat model's share of one turn: a deadline and what failed before it."""

    deadline: float
    """``clock()`` time after which no request is sent or waited for."""
    clock: Callable[[], float] = time.monotonic
    events: list[Degraded] = field(default_factory=list)
    """One per request of the turn the chat model did not answer, in order."""

    @classmethod
    def start(cls, config: LLMConfig, clock: Callable[[], float] = time.monotonic) -> LLMBudget:
        """The budget of a turn starting now."""
        return cls(clock() + config.deadline_s - config.offline_reserve_s, clock)

    def remaining(self) -> float:
        return self.deadline - self.clock()

    @property
    def failed(self) -> bool:
        """Whether the endpoint has already let this turn down (timed out, was unreachable
        or kept failing; a refused request says nothing about the next one)."""
        return any(e.error not in ("rejected", "error") for e in self.events)

    @staticmethod
    def current() -> LLMBudget | None:
        """The budget of the turn running in this thread or task, if any."""
        return _BUDGET.get()

    @contextmanager
    def active(self) -> Iterator[LLMBudget]:
        """Requests made inside the block (in this thread or task) draw on this budget."""
        token = _BUDGET.set(self)
        try:
            yield self
        finally:
            _BUDGET.reset(token)


_BUDGET: contextvars.ContextVar[LLMBudget | None] = contextvars.ContextVar(
    "cxbot_llm_budget", default=None
)


def _classify(exc: BaseException) -> ErrorKind:
    """The kind of a chat model's exception (``openai``/``httpx`` ones are recognised)."""
    if "openai" in sys.modules:
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return "timeout"
        if isinstance(exc, openai.APIConnectionError):
            return "connection"
        if isinstance(exc, openai.RateLimitError):
            return "rate_limited"
        if isinstance(exc, openai.APIStatusError):
            return "server_error" if exc.status_code >= 500 else "rejected"
    if "httpx" in sys.modules:
        import httpx

        if isinstance(exc, httpx.TimeoutException):
            return "timeout"
        if isinstance(exc, httpx.TransportError):
            return "connection"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionError):
        return "connection"
    return "error"


class _Failed(Exception):
    """One attempt failed (internal to :class:`ChatEndpoint`'s retry loop)."""

    def __init__(self, kind: ErrorKind, cause: BaseException | None) -> None:
        self.kind = kind
        self.cause = cause
        super().__init__(f"{kind}: {cause!r}" if cause is not None else kind)


def _accepts_timeout(model: Any) -> bool:
    """Whether ``model.invoke(..., timeout=s)`` sets the request's timeout (the OpenAI
    client does; another chat model would send it to the endpoint as a parameter)."""
    if "langchain_openai" not in sys.modules:
        return False
    from langchain_openai.chat_models.base import BaseChatOpenAI

    return isinstance(model, BaseChatOpenAI)


class ChatEndpoint:
    """The chat model behind timeouts, retries with backoff and the turn's deadline.

    ``invoke`` and ``stream`` take and give what LangChain's do; every failure comes out as
    :class:`~cxbot.errors.LLMUnavailable` after being recorded in the turn's budget.
    ``component`` names the use (``rag_answer``, ``query_rewrite``…) in those records.
    """

    def __init__(
        self,
        model: Any,
        *,
        timeout_s: float | None = None,
        max_retries: int = 0,
        backoff_s: float = 0.5,
        call_budget_s: float | None = None,
        component: str = "llm",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.model = model
        """The LangChain chat model."""
        self.timeout_s = timeout_s
        """Per request; ``None`` leaves the model's own timeout."""
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.call_budget_s = call_budget_s
        """Outside a turn, the longest one call may take (``None``: no limit)."""
        self.component = component
        self._sleep = sleep
        self._timeout_kwarg = timeout_s is not None and _accepts_timeout(model)

    @classmethod
    def from_config(cls, model: Any, config: LLMConfig) -> ChatEndpoint:
        return cls(
            model,
            timeout_s=config.timeout_s,
            max_retries=config.max_retries,
            backoff_s=config.backoff_s,
            call_budget_s=config.deadline_s - config.offline_reserve_s,
        )

    def for_component(self, component: str) -> ChatEndpoint:
        """The same endpoint and settings, recording failures as ``component``."""
        twin = ChatEndpoint.__new__(ChatEndpoint)
        for name in ("model", "timeout_s", "max_retries", "backoff_s", "call_budget_s"):
            setattr(twin, name, getattr(self, name))
        twin.component = component
        twin._sleep = self._sleep
        twin._timeout_kwarg = self._timeout_kwarg
        return twin

    # -- calls -----------------------------------------------------------------------
    def invoke(self, messages: Any) -> Any:
        """The model's reply message; :class:`~cxbot.errors.LLMUnavailable` when it gives
        none in time."""
        result: list[Any] = []

        def attempt(timeout: float | None) -> None:
            result.append(self.model.invoke(messages, **self._kwargs(timeout)))

        self._with_retries(attempt)
        return result[-1]

    def stream(self, messages: Any) -> Iterator[Any]:
        """The model's reply in chunks. Failures before the first chunk are retried; a
        failure after it, or the deadline passing while chunks come, ends the stream with
        :class:`~cxbot.errors.LLMUnavailable` (what came so far must not be repeated)."""
        opened: list[tuple[Iterator[Any], Any]] = []

        def attempt(timeout: float | None) -> None:
            chunks = iter(self.model.stream(messages, **self._kwargs(timeout)))
            try:
                first = next(chunks)
            except StopIteration:
                first = None
            except BaseException:
                _close(chunks)
                raise
            opened.append((chunks, first))

        started, budget = self._start()
        attempts = self._with_retries(attempt, started=started, budget=budget)
        chunks, first = opened[-1]
        return self._rest(chunks, first, started, budget, attempts)

    def _rest(
        self,
        chunks: Iterator[Any],
        first: Any,
        started: float,
        budget: LLMBudget | None,
        attempts: int,
    ) -> Iterator[Any]:
        deadline = self._deadline(started, budget)
        try:
            if first is None:
                return
            yield first
            while True:
                if deadline is not None and time.monotonic() > deadline:
                    raise self._give_up("deadline", None, attempts, started, budget)
                try:
                    chunk = next(chunks)
                except StopIteration:
                    return
                except Exception as exc:  # the endpoint's failures, whatever the client
                    raise self._give_up(_classify(exc), exc, attempts, started, budget) from exc
                yield chunk
        finally:
            _close(chunks)

    # -- the retry loop --------------------------------------------------------------
    def _kwargs(self, timeout: float | None) -> dict[str, Any]:
        return {"timeout": timeout} if self._timeout_kwarg and timeout is not None else {}

    def _start(self) -> tuple[float, LLMBudget | None]:
        return time.monotonic(), _BUDGET.get()

    def _deadline(self, started: float, budget: LLMBudget | None) -> float | None:
        """The ``time.monotonic()`` after which this call stops."""
        if budget is not None:
            return started + budget.remaining()
        return None if self.call_budget_s is None else started + self.call_budget_s

    def _with_retries(
        self,
        attempt: Callable[[float | None], None],
        *,
        started: float | None = None,
        budget: LLMBudget | None = None,
    ) -> int:
        """Run ``attempt`` (given its timeout) until it succeeds; the attempts made."""
        from tenacity import (
            Retrying,
            retry_if_exception,
            stop_after_attempt,
            stop_any,
            stop_before_delay,
            wait_exponential,
            wait_random,
        )

        if started is None:
            started, budget = self._start()
        if budget is not None and budget.failed:
            raise self._give_up("skipped", None, 0, started, budget)
        deadline = self._deadline(started, budget)
        attempts = 0

        def run_once() -> None:
            nonlocal attempts
            timeout = self.timeout_s
            if deadline is not None:
                left = deadline - time.monotonic()
                if left < MIN_ATTEMPT_S:
                    raise _Failed("deadline", None)
                timeout = left if timeout is None else min(timeout, left)
            attempts += 1
            try:
                attempt(timeout)
            except Exception as exc:  # the endpoint's failures, whatever the client
                raise _Failed(_classify(exc), exc) from exc

        stop: Any = stop_after_attempt(self.max_retries + 1)
        if deadline is not None:  # no retry whose wait would end past the deadline
            stop = stop_any(stop, stop_before_delay(deadline - time.monotonic() - MIN_ATTEMPT_S))
        retrying = Retrying(
            stop=stop,
            wait=wait_exponential(multiplier=self.backoff_s, max=BACKOFF_MAX_S)
            + wait_random(0, self.backoff_s / 2),
            retry=retry_if_exception(lambda e: isinstance(e, _Failed) and e.kind in _RETRIED),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            retrying(run_once)
        except _Failed as failed:
            raise self._give_up(failed.kind, failed.cause, attempts, started, budget) from (
                failed.cause
            )
        return attempts

    def _give_up(
        self,
        kind: str,
        cause: BaseException | None,
        attempts: int,
        started: float,
        budget: LLMBudget | None,
    ) -> LLMUnavailable:
        elapsed = time.monotonic() - started
        reason = (
            f"{type(cause).__name__}: {cause}"
            if cause is not None
            else (
                "the endpoint already failed in this turn"
                if kind == "skipped"
                else "the turn's deadline"
            )
        )
        if budget is not None:
            budget.events.append(
                Degraded(
                    self.component,
                    kind,
                    attempts=attempts,
                    elapsed_ms=round(elapsed * 1000, 1),
                    fallback="offline",
                )
            )
        return LLMUnavailable(reason, kind=kind, attempts=attempts, elapsed_s=elapsed)


def _close(chunks: Iterator[Any]) -> None:
    close = getattr(chunks, "close", None)
    if callable(close):
        close()


def endpoint_for(chat_model: Any, component: str) -> ChatEndpoint | None:
    """``chat_model`` as a stage's endpoint: ``None`` stays ``None`` (offline), an endpoint
    is relabelled, and a bare LangChain model is called as it is configured (its own
    timeout, no retries)."""
    if chat_model is None:
        return None
    if isinstance(chat_model, ChatEndpoint):
        return chat_model.for_component(component)
    return ChatEndpoint(chat_model, component=component)
