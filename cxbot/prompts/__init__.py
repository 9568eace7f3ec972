"""Prompt templates and canned replies, read from the project's ``prompts/`` folder.

Each LLM task has one template file, keyed by :class:`PromptTask`; rendering is strict
(a missing variable is a :class:`~cxbot.errors.PromptError` naming the template).
The short texts the assistant says without an LLM live in ``prompts/replies.yaml``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cxbot.errors import PromptError

__all__ = ["PromptLibrary", "PromptTask", "ReplyKey"]


class PromptTask(enum.StrEnum):
    """LLM tasks; the value is the template's file stem in ``prompts/``."""

    SYSTEM = "system"
    RAG_ANSWER = "rag_answer"
    GROUNDING_JUDGE = "grounding_judge"
    HANDOFF_SUMMARY = "handoff_summary"
    HANDOFF_SUMMARY_RETRY = "handoff_summary_retry"
    INTENT_CLASSIFY = "intent_classify"
    QUERY_REWRITE = "query_rewrite"
    INJECTION_CHECK = "injection_check"


class ReplyKey(enum.StrEnum):
    """Canned replies in ``prompts/replies.yaml``."""

    BLOCKED_INJECTION = "blocked_injection"
    BLOCKED_OUTPUT = "blocked_output"
    OUT_OF_SCOPE = "out_of_scope"
    DE_ESCALATE = "de_escalate"
    UNGROUNDED = "ungrounded"
    DONT_KNOW = "dont_know"
    HANDOFF = "handoff"
    WITH_AGENT = "with_agent"
    GREETING = "greeting"
    THANKS = "thanks"
    GOODBYE = "goodbye"
    PROFILE_INTRO = "profile_intro"
    NEED_CUSTOMER = "need_customer"
    VERIFY_START = "verify_start"
    VERIFY_ASK = "verify_ask"
    VERIFY_REASK = "verify_reask"
    VERIFY_FAILED = "verify_failed"
    VERIFY_LOCKED = "verify_locked"
    VERIFIED = "verified"
    BUTTON_YES = "button_yes"
    BUTTON_NO = "button_no"
    DIGRESSION_RESUME = "digression_resume"
    WHAT_TO_CHANGE = "what_to_change"
    NO_APPOINTMENTS = "no_appointments"
    LLM_UNAVAILABLE = "llm_unavailable"
    SEARCH_UNAVAILABLE = "search_unavailable"


SUFFIX = ".j2"
REPLIES_FILE = "replies.yaml"


class PromptLibrary:
    """Loads and strictly renders the templates of one ``prompts/`` folder."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._env: Any = None
        self._replies: dict[str, str] | None = None

    def _environment(self) -> Any:
        if self._env is None:
            import jinja2

            self._env = jinja2.Environment(
                loader=jinja2.FileSystemLoader(str(self.folder)),
                undefined=jinja2.StrictUndefined,
                autoescape=False,
                keep_trailing_newline=False,
                trim_blocks=True,
                lstrip_blocks=True,
            )
        return self._env

    def path(self, task: PromptTask) -> Path:
        return self.folder / f"{task.value}{SUFFIX}"

    def render(self, task: PromptTask, **variables: Any) -> str:
        import jinja2

        name = f"{task.value}{SUFFIX}"
        try:
            return str(self._environment().get_template(name).render(**variables)).strip()
        except jinja2.TemplateNotFound:
            raise PromptError(
                f"prompt template for task '{task.value}' is missing",
                file=self.folder / name,
                fix="run `cxbot init` to see the default templates",
            ) from None
        except jinja2.UndefinedError as exc:
            raise PromptError(
                f"template variable missing: {exc.message}",
                file=self.folder / name,
                fix=f"pass it when rendering or remove it; given: {', '.join(sorted(variables))}",
            ) from None
        except jinja2.TemplateSyntaxError as exc:
            raise PromptError(
                f"template syntax error: {exc.message}", file=self.folder / name, line=exc.lineno
            ) from None

    def replies(self) -> Mapping[str, str]:
        if self._replies is None:
            from cxbot._yaml import read_yaml

            path = self.folder / REPLIES_FILE
            data = read_yaml(path, error=PromptError) or {}
            if not isinstance(data, dict):
                raise PromptError("must be a mapping of reply name → text", file=path, line=1)
            missing = [k.value for k in ReplyKey if k.value not in data]
            if missing:
                raise PromptError(
                    f"replies missing: {', '.join(missing)}", file=path, fix="add those keys"
                )
            self._replies = {str(k): str(v).strip() for k, v in data.items()}
        return self._replies

    def reply(self, key: ReplyKey, **variables: Any) -> str:
        import jinja2

        text = self.replies()[key.value]
        try:
            return str(self._environment().from_string(text).render(**variables)).strip()
        except jinja2.UndefinedError as exc:
            raise PromptError(
                f"reply '{key.value}': variable missing: {exc.message}",
                file=self.folder / REPLIES_FILE,
            ) from None

    def validate(self) -> None:
        """Check every task template parses and the replies file is complete."""
        import jinja2

        for task in PromptTask:
            try:
                self._environment().get_template(f"{task.value}{SUFFIX}")
            except jinja2.TemplateNotFound:
                raise PromptError(
                    f"prompt template for task '{task.value}' is missing", file=self.path(task)
                ) from None
            except jinja2.TemplateSyntaxError as exc:
                raise PromptError(
                    f"template syntax error: {exc.message}", file=self.path(task), line=exc.lineno
                ) from None
        self.replies()
