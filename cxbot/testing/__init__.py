"""Test helpers shipped with cxbot: transcript tests, an OpenAI-compatible stub server, a
fixed clock (and, in ``cxbot.testing.contracts``, the store contract tests)."""

from cxbot.testing.chat import TestChat
from cxbot.testing.clock import FixedClock
from cxbot.testing.stub_llm import StubLLMServer, StubRequest

__all__ = ["FixedClock", "StubLLMServer", "StubRequest", "TestChat"]
