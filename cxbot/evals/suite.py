"""Eval suites: YAML files of cases (one conversation each) with expectations per turn.

``suite_json_schema()`` is published as ``evals/suite.schema.json`` for editors; a suite
file may name it in a ``$schema`` key. The demo conversation is a suite too.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cxbot._yaml import load_yaml_model
from cxbot.errors import ConfigError

__all__ = [
    "DEFAULT_CLOCK",
    "Case",
    "Expect",
    "GuardrailExpect",
    "Suite",
    "Turn",
    "load_suite",
    "load_suites",
    "suite_json_schema",
]

DEFAULT_CLOCK = datetime(2026, 11, 25, 10, 0)
"""Wednesday 25 November 2026, 10:00 — the clock of a suite that sets none."""

EventKind = Literal[
    "user_uttered",
    "bot_uttered",
    "customer_identified",
    "flow_started",
    "slot_set",
    "slot_requested",
    "slot_rejected",
    "confirmation_requested",
    "flow_completed",
    "flow_cancelled",
    "guardrail_triggered",
    "handoff_requested",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class GuardrailExpect(_Model):
    name: str = Field(description="Guardrail name, e.g. injection or pii.")
    action: Literal["block", "rewrite", "allow"] = Field(description="Expected verdict.")


class Expect(_Model):
    """What must hold after one turn; every key is optional."""

    route: Literal["flow", "rag", "handoff", "blocked"] | None = Field(
        None, description="Route the turn took."
    )
    intent: str | None = Field(None, description="Intent the NLU must detect.")
    out_of_scope: bool | None = Field(None, description="The NLU must find no intent.")
    slots: dict[str, str] = Field(
        default_factory=dict, description="Flow slots that must hold these values after the turn."
    )
    cites: tuple[str, ...] = Field((), description="Sources that must all be cited.")
    contains: tuple[str, ...] = Field((), description="Substrings the reply must contain.")
    not_contains: tuple[str, ...] = Field((), description="Substrings the reply must not contain.")
    guardrail: GuardrailExpect | None = Field(None, description="A verdict recorded this turn.")
    handoff: bool | None = Field(None, description="Whether a handoff summary is produced.")
    summary: dict[str, str] = Field(
        default_factory=dict, description="HandoffSummary fields (dotted paths) → value."
    )
    dont_know: bool | None = Field(None, description="The reply is the 'don't know' answer.")
    events: tuple[EventKind, ...] = Field((), description="Event kinds that must occur.")

    @field_validator("cites", "contains", "not_contains", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value


class Turn(_Model):
    user: str = Field(description="What the customer says.")
    expect: Expect | None = Field(None, description="What must hold after the turn.")


class Case(_Model):
    """One conversation with expectations."""

    id: str = Field(description="Case id, unique within the suite.")
    title: str = Field("", description="What the case shows.")
    tags: tuple[str, ...] = Field((), description="Free labels for filtering.")
    customer_id: str | None = Field(None, description="Customer the conversation is with.")
    clock: datetime | None = Field(None, description="Fixed clock (overrides the suite's).")
    turns: tuple[Turn, ...] = Field((), description="Turns, in order.")
    user: str | None = Field(None, description="Shorthand for a one-turn case: the message.")
    expect: Expect | None = Field(None, description="Shorthand: what must hold after it.")

    @model_validator(mode="after")
    def _turns_or_shorthand(self) -> Case:
        if bool(self.turns) == (self.user is not None):
            raise ValueError("give either 'turns' or 'user' (with an optional 'expect')")
        if self.expect is not None and self.user is None:
            raise ValueError("'expect' at case level goes with 'user'")
        return self

    @property
    def dialogue(self) -> tuple[Turn, ...]:
        """The turns, with the one-turn shorthand expanded."""
        if self.user is not None:
            return (Turn(user=self.user, expect=self.expect),)
        return self.turns

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
            raise ValueError("use letters, digits, '-', '_' or '.'")
        return value


class Suite(_Model):
    """One file of ``evals/``."""

    schema_ref: str | None = Field(None, alias="$schema", description="JSON schema for editors.")
    suite: str = Field(description="Suite name, unique in the project.")
    description: str = Field("", description="What the suite measures.")
    clock: datetime = Field(DEFAULT_CLOCK, description="Fixed clock of every case.")
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="Minimum value per metric of this suite."
    )
    cases: tuple[Case, ...] = Field(min_length=1, description="The cases.")

    @model_validator(mode="after")
    def _unique_ids(self) -> Suite:
        ids = [c.id for c in self.cases]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"case ids repeat: {', '.join(repeated)}")
        return self


def suite_json_schema() -> dict[str, Any]:
    return Suite.model_json_schema(by_alias=True)


def load_suite(path: Path) -> Suite:
    return load_yaml_model(path, Suite)


def load_suites(folder: Path) -> list[Suite]:
    """Every suite under ``folder`` (recursively, sorted by path); names must be unique."""
    if folder.is_file():
        return [load_suite(folder)]
    if not folder.is_dir():
        raise ConfigError("eval folder not found", file=folder)
    suites: list[Suite] = []
    seen: dict[str, Path] = {}
    for path in sorted(folder.rglob("*.yaml")):
        suite = load_suite(path)
        if suite.suite in seen:
            raise ConfigError(
                f"suite name '{suite.suite}' is also used by {seen[suite.suite]}",
                file=path,
                fix="give each suite file its own 'suite:' name",
            )
        seen[suite.suite] = path
        suites.append(suite)
    return suites
