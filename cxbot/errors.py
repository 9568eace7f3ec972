"""The one exception tree of cxbot, split by who must act.

- :class:`ConfigError` — the project's files are wrong (``cxbot.yaml``, flows, prompts);
  the person editing them must act. Carries file, line and the fix.
- :class:`BackendError` — a store, the embedding model or the LLM failed; operations must act.
- :class:`TurnError` — the input of one turn is unusable (empty message, unknown customer);
  the calling chat backend must act. Nothing is stored for a turn that raised it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BackendError",
    "ConfigError",
    "CxbotError",
    "FlowSpecError",
    "IngestError",
    "InvalidMessage",
    "InvalidSlot",
    "LLMUnavailable",
    "PromptError",
    "TurnError",
    "UnknownConversation",
    "UnknownCustomer",
]


class CxbotError(Exception):
    """Base class of every error cxbot raises on purpose."""


class ConfigError(CxbotError):
    """A project file (config, flow, prompt) is invalid; names the file, the line and the fix."""

    def __init__(
        self,
        reason: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        fix: str | None = None,
    ) -> None:
        self.reason = reason
        self.file = str(file) if file is not None else None
        self.line = line
        self.fix = fix
        where = ""
        if self.file is not None:
            where = self.file + (f":{line}" if line is not None else "") + ": "
        message = where + reason
        if fix:
            message += f" (fix: {fix})"
        super().__init__(message)


class FlowSpecError(ConfigError):
    """A flow file in ``flows/`` is malformed."""


class PromptError(ConfigError):
    """A prompt template is missing or rendered with a missing variable."""


class BackendError(CxbotError):
    """A backend (vector store, SQLite, embedding model, LLM endpoint) failed."""


class LLMUnavailable(BackendError):
    """The chat model gave no answer in time: its retries ran out, the turn's deadline came,
    or the endpoint refused the request. The stage that asked answers offline instead.

    ``kind`` is what went wrong last (``timeout``, ``connection``, ``server_error``,
    ``rate_limited``, ``rejected``, ``deadline``, ``skipped``, ``error``); ``attempts`` is
    how many requests were sent and ``elapsed_s`` how long they took, backoff included.
    """

    def __init__(self, reason: str, *, kind: str, attempts: int, elapsed_s: float) -> None:
        self.reason = reason
        self.kind = kind
        self.attempts = attempts
        self.elapsed_s = elapsed_s
        super().__init__(
            f"chat model unavailable ({kind}, {attempts} attempt(s), {elapsed_s:.2f} s): {reason}"
        )


class IngestError(CxbotError):
    """A knowledge document could not be read; the store is left as it was for that document.

    ``source`` is the document's path in the knowledge folder; ``line`` (1-based), when
    known, is where in the file the problem is.
    """

    def __init__(self, reason: str, *, source: str, line: int | None = None) -> None:
        self.reason = reason
        self.source = source
        self.line = line
        where = source + (f":{line}" if line is not None else "")
        super().__init__(f"{where}: {reason}")


class TurnError(CxbotError):
    """The input of a turn is unusable; the turn did not happen and no state changed."""


class InvalidMessage(TurnError):
    """The user message is empty, too long or not text."""


class UnknownCustomer(TurnError):
    """The customer id passed to a turn is not in the profile store."""


class UnknownConversation(TurnError):
    """The conversation id does not exist in the conversation store."""


class InvalidSlot(TurnError):
    """A slot given from outside a turn (an agent handing back) is not one of the flow's
    slots, or its value fails the slot's validation."""
