"""Guardrails: uniform units that allow, block or rewrite a message.

``guardrails/`` owns allow/block/rewrite; nothing else blocks a message. Units are chosen
and ordered by name in ``cxbot.yaml``; built-ins and plugins register the same way, as
``GuardrailPlugin`` values in the ``cxbot.guardrails`` entry-point group.
"""

from cxbot.guardrails.base import Guardrail, GuardrailContext, Verdict
from cxbot.guardrails.registry import GuardrailDeps, GuardrailPlugin, available_guardrails

__all__ = [
    "Guardrail",
    "GuardrailContext",
    "GuardrailDeps",
    "GuardrailPlugin",
    "Verdict",
    "available_guardrails",
]
