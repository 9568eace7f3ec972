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


@dataclass(frozen=True, slots=True)
class ActionResult:
    """``done`` with values for the reply template, or ``conflict`` with alternatives."""

    status: Literal["done", "conflict"]
    values: Mapping[str, str] = field(default_factory=dict)
    options: tuple[str, ...] = ()
