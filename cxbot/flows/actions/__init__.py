"""Actions a flow runs after confirmation; built-ins by name (``calendar.book`` …)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from cxbot.flows.actions.base import ActionContext, ActionResult
from cxbot.flows.actions.calendar import book, cancel, reschedule

__all__ = ["Action", "ActionContext", "ActionResult", "builtin_actions"]

Action = Callable[[Mapping[str, str], ActionContext], ActionResult]


def builtin_actions() -> dict[str, Action]:
    """The actions every assistant has; callers may add their own to the returned dict."""
    return {"calendar.book": book, "calendar.cancel": cancel, "calendar.reschedule": reschedule}
