"""The contract between the flow engine and an action."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from cxbot.flows.actions.calendar import CalendarBackend

__all__ = ["ActionContext", "ActionResult"]


@dataclass(frozen=True, slots=True)
class ActionContext:
    """What an action may use: who the customer is, the turn's clock, the backends."""

    customer_id: str | None
    now: datetime
    calendar: CalendarBackend
    key: str | None = None
    """The turn's own id for side effects (conversation and the version it loaded): a turn
    run again after its worker died has the same key, so its booking is made once."""


@dataclass(frozen=True, slots=True)
class ActionResult:
    """``done`` with values for the reply template, or ``conflict`` with alternatives."""

    status: Literal["done", "conflict"]
    values: Mapping[str, str] = field(default_factory=dict)
    options: tuple[str, ...] = ()
