"""Test helpers shipped with cxbot: an OpenAI-compatible stub server and a fake clock."""

from cxbot.testing.clock import FixedClock
from cxbot.testing.stub_llm import StubLLMServer, StubRequest

__all__ = ["FixedClock", "StubLLMServer", "StubRequest"]
