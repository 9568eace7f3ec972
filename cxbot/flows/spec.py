"""Flow specifications: the pydantic models of ``flows/*.yaml`` and their loader.

A malformed flow fails at load with file, line, reason and fix. ``flow_json_schema()``
is the JSON schema editors use (``cxbot validate --schema``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from cxbot._yaml import load_yaml_model, read_yaml
from cxbot.errors import FlowSpecError

__all__ = [
    "ConflictSpec",
    "FlowSpec",
    "IntentSpec",
    "IntentsFile",
    "SlotSpec",
    "flow_json_schema",
    "load_flows",
    "load_intents",
]

SlotType = Literal["text", "choice", "date", "time", "appointment"]
Validator = Literal["future", "open_day", "opening_hours"]
ChoiceSource = Literal["branches", "topics", "upcoming_appointments"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlotSpec(_Model):
    name: str = Field(description="Slot name, used in templates as {{ name }}.")
    type: SlotType = Field(description="How values are recognised and normalised.")
    ask: str = Field(
        description="Question asking for the slot (jinja2; {{ options }} lists choices)."
    )
    reask: str | None = Field(None, description="Different phrasing after a failed attempt.")
    choices: tuple[str, ...] | None = Field(None, description="Allowed values of a choice slot.")
    choices_from: ChoiceSource | None = Field(None, description="Backend list of allowed values.")
    synonyms: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="Extra words recognised for a choice value."
    )
    validators: tuple[Validator, ...] = Field((), description="Checks a value must pass.")
    when: dict[str, tuple[str, ...]] | None = Field(
        None,
        description=(
            "Ask this slot only when each named earlier slot has one of the listed values, "
            "e.g. {topic: [mortgage]}."
        ),
    )

    def applies(self, filled: Mapping[str, str]) -> bool:
        """Whether the slot is asked, given the slots filled so far."""
        if not self.when:
            return True
        return all(filled.get(name) in values for name, values in self.when.items())

    @model_validator(mode="after")
    def _choices_present(self) -> SlotSpec:
        if self.type == "choice" and not (self.choices or self.choices_from):
            raise ValueError(f"choice slot '{self.name}' needs 'choices' or 'choices_from'")
        return self


class ConflictSpec(_Model):
    slot: str = Field(description="Slot asked again when the action reports a conflict.")
    message: str = Field(description="What to say; {{ options }} lists the alternatives.")


class FlowSpec(_Model):
    name: str = Field(description="Flow name; also the intent that starts it.")
    description: str = Field(description="One sentence on what the flow does.")
    examples: tuple[str, ...] = Field(min_length=3, description="Utterances that start the flow.")
    requires_customer: bool = Field(False, description="Only for identified customers.")
    slots: tuple[SlotSpec, ...] = Field(min_length=1, description="Slots, asked in this order.")
    confirm: str = Field(description="Confirmation question before the action (jinja2).")
    action: str = Field(description="Action run after confirmation, e.g. calendar.book.")
    done: str = Field(description="Reply after the action succeeded (jinja2).")
    cancelled: str = Field(description="Reply when the customer cancels the flow.")
    conflict: ConflictSpec | None = Field(None, description="Handling of action conflicts.")
    max_retries: int = Field(2, ge=1, description="Failed attempts at one slot before handoff.")

    @model_validator(mode="after")
    def _conditions_name_earlier_slots(self) -> FlowSpec:
        seen: set[str] = set()
        for slot in self.slots:
            for name in slot.when or {}:
                if name not in seen:
                    raise ValueError(
                        f"slot '{slot.name}': 'when' names '{name}', which is not an earlier slot"
                    )
            seen.add(slot.name)
        return self

    @field_validator("action")
    @classmethod
    def _known_action(cls, value: str, info: ValidationInfo) -> str:
        known: Collection[str] | None = (info.context or {}).get("actions")
        if known is not None and value not in known:
            raise ValueError(f"unknown action '{value}'; known actions: {', '.join(sorted(known))}")
        return value

    @model_validator(mode="after")
    def _conflict_slot_exists(self) -> FlowSpec:
        names = [s.name for s in self.slots]
        if len(set(names)) != len(names):
            raise ValueError(f"slot names repeat: {names}")
        return self


class IntentSpec(_Model):
    name: str = Field(description="Intent name.")
    examples: tuple[str, ...] = Field(min_length=3, description="Example utterances.")


class IntentsFile(_Model):
    intents: tuple[IntentSpec, ...] = Field(description="Intents that do not start a flow.")


def flow_json_schema() -> dict[str, Any]:
    return FlowSpec.model_json_schema()


def load_flows(folder: Path, *, actions: Collection[str]) -> dict[str, FlowSpec]:
    """Load every ``*.yaml`` flow of ``folder`` except ``intents.yaml``."""
    flows: dict[str, FlowSpec] = {}
    for path in sorted(folder.glob("*.yaml")):
        if path.name == "intents.yaml":
            continue
        data = read_yaml(path, error=FlowSpecError)
        spec = load_yaml_model(
            path, FlowSpec, error=FlowSpecError, data=data, context={"actions": actions}
        )
        if spec.name != path.stem:
            raise FlowSpecError(
                f"flow name '{spec.name}' differs from the file name",
                file=path,
                line=_line(data, "name"),
                fix=f"rename the file to {spec.name}.yaml or set name: {path.stem}",
            )
        names = [s.name for s in spec.slots]
        if spec.conflict is not None and spec.conflict.slot not in names:
            raise FlowSpecError(
                f"conflict.slot '{spec.conflict.slot}' is not a slot of this flow",
                file=path,
                line=_line(data, "conflict", "slot"),
                fix=f"use one of: {', '.join(names)}",
            )
        flows[spec.name] = spec
    return flows


def _line(data: Any, *keys: str) -> int | None:
    """1-based line of a nested key in ruamel data, if recorded."""
    node = data
    line = None
    for key in keys:
        try:
            line = node.lc.key(key)[0] + 1
            node = node[key]
        except (AttributeError, KeyError, TypeError):
            break
    return line


def load_intents(path: Path) -> IntentsFile:
    if not path.exists():
        return IntentsFile(intents=())
    return load_yaml_model(path, IntentsFile, error=FlowSpecError)
