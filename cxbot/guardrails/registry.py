"""Guardrails by name, found through the ``cxbot.guardrails`` entry-point group.

Built-ins register exactly as a third-party package does: an entry point whose value is a
:class:`GuardrailPlugin` (name, stage, and a factory taking :class:`GuardrailDeps`)::

    [project.entry-points."cxbot.guardrails"]
    no_crypto = "acme_rails:NO_CRYPTO"

Units are built per assistant (no module-level instances), so two assistants never share
state through a guardrail.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cxbot.errors import ConfigError
from cxbot.guardrails.base import Guardrail

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from cxbot.config import GuardrailsConfig
    from cxbot.prompts import PromptLibrary

__all__ = [
    "ENTRY_POINT_GROUP",
    "GuardrailDeps",
    "GuardrailPlugin",
    "available_guardrails",
    "guardrail_names",
]

ENTRY_POINT_GROUP = "cxbot.guardrails"

Stage = Literal["input", "output"]


@dataclass(frozen=True, slots=True)
class GuardrailDeps:
    """What guardrail factories may need from the assistant."""

    config: GuardrailsConfig
    root: Path
    system_prompt: str
    prompts: PromptLibrary
    embed_many: Callable[[list[str]], Any]
    known_contacts: Callable[[], Collection[str]]
    chat_model: BaseChatModel | None = None
    in_scope_vectors: Callable[[], Any] | None = None
    """Vectors of the project's intent and flow examples (what the assistant is for),
    embedded once per assistant however many units read them."""


@dataclass(frozen=True, slots=True)
class GuardrailPlugin:
    """One guardrail unit as registered: its name in ``cxbot.yaml``, the stage it screens
    (customer messages or replies), and how to build it for an assistant."""

    name: str
    stage: Stage
    build: Callable[[GuardrailDeps], Guardrail]
    description: str = ""


def available_guardrails() -> dict[str, GuardrailPlugin]:
    """Every installed guardrail by name (built-ins and plugins alike).

    Raises:
        ConfigError: an entry point does not load, is not a ``GuardrailPlugin``, or two
            installed packages register the same name.
    """
    from importlib.metadata import entry_points

    found: dict[str, GuardrailPlugin] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point '{point.name} = {point.value}' ({ENTRY_POINT_GROUP})"
        try:
            plugin = point.load()
        except Exception as exc:  # a third-party import can fail in any way
            raise ConfigError(f"{where} does not load: {exc}") from exc
        if not isinstance(plugin, GuardrailPlugin):
            raise ConfigError(
                f"{where} is a {type(plugin).__name__}, not a GuardrailPlugin",
                fix="point the entry point at a cxbot.guardrails.GuardrailPlugin value",
            )
        if plugin.name != point.name:
            raise ConfigError(
                f"{where} registers a plugin named '{plugin.name}'",
                fix="use the same name for the entry point and the plugin",
            )
        if plugin.name in found:
            raise ConfigError(f"{where}: the name '{plugin.name}' is registered twice")
        found[plugin.name] = plugin
    return found


def guardrail_names(
    stage: Stage, plugins: Mapping[str, GuardrailPlugin] | None = None
) -> list[str]:
    """The names of the installed guardrails of one stage, sorted."""
    plugins = available_guardrails() if plugins is None else plugins
    return sorted(name for name, plugin in plugins.items() if plugin.stage == stage)
