"""Built-in guardrails by name, constructed per assistant (no module-level instances)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from cxbot.guardrails.base import Guardrail

__all__ = ["INPUT_GUARDRAILS", "OUTPUT_GUARDRAILS", "GuardrailDeps", "builtin_guardrails"]

INPUT_GUARDRAILS = ("pii", "injection")
OUTPUT_GUARDRAILS = ("pii_leak", "prompt_leak")


@dataclass(frozen=True, slots=True)
class GuardrailDeps:
    """What guardrail factories may need from the assistant."""

    injection_similarity: float
    system_prompt: str
    embed_many: Callable[[list[str]], Any]
    known_contacts: Callable[[], Collection[str]]


def builtin_guardrails() -> Mapping[str, Callable[[GuardrailDeps], Guardrail]]:
    from cxbot.guardrails.input.injection import InjectionGuard
    from cxbot.guardrails.input.pii import PiiRedactor
    from cxbot.guardrails.output.leaks import PiiLeakGuard, PromptLeakGuard

    return {
        "pii": lambda deps: PiiRedactor(),
        "injection": lambda deps: InjectionGuard(deps.embed_many, deps.injection_similarity),
        "pii_leak": lambda deps: PiiLeakGuard(deps.known_contacts),
        "prompt_leak": lambda deps: PromptLeakGuard(deps.system_prompt),
    }
