"""Guardrails: uniform units that allow, block or rewrite a message.

``guardrails/`` owns allow/block/rewrite; nothing else blocks a message. Units are chosen
and ordered by name in ``cxbot.yaml``; ``builtin_guardrails()`` is the name → factory map.
"""

from cxbot.guardrails.base import Guardrail, GuardrailContext, Verdict
from cxbot.guardrails.registry import builtin_guardrails

__all__ = ["Guardrail", "GuardrailContext", "Verdict", "builtin_guardrails"]
