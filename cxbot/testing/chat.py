"""``TestChat``: transcript tests that read like the conversation they check.

    chat = TestChat(bot, customer_id="C-1002")
    chat.say("Book a savings appointment at Riverside").expect(route="flow", slots={...})
    chat.say("next Tuesday at 10am").expect(contains=["Shall I book it?"])

``expect`` takes the keys of an eval suite's ``expect`` (route, intent, slots, cites,
contains, not_contains, guardrail, handoff, summary, dont_know, events) and fails with
expected vs got for every check that does not hold.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from cxbot.evals.evaluators import TurnOutcome, check_turn
from cxbot.evals.suite import Expect
from cxbot.prompts import ReplyKey
from cxbot.types import Reply

if TYPE_CHECKING:
    from cxbot.assistant import Assistant

__all__ = ["TestChat"]

_numbers = itertools.count(1)


class TestChat:
    """One conversation with an assistant, turn by turn, with expectations."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        assistant: Assistant,
        *,
        customer_id: str | None = None,
        conversation_id: str | None = None,
    ) -> None:
        self.assistant = assistant
        self.customer_id = customer_id
        self.conversation_id = conversation_id or f"testchat-{next(_numbers)}"
        self.transcript: list[tuple[str, Reply]] = []

    @property
    def reply(self) -> Reply:
        if not self.transcript:
            raise AssertionError("nothing said yet: call say() first")
        return self.transcript[-1][1]

    def say(self, text: str) -> TestChat:
        reply = self.assistant.respond(self.conversation_id, text, customer_id=self.customer_id)
        self.transcript.append((text, reply))
        return self

    def expect(self, **expected: Any) -> TestChat:
        outcome = TurnOutcome(
            self.reply,
            self.slots(),
            self.assistant.deps.prompts.reply(ReplyKey.DONT_KNOW),
        )
        failed = [c for c in check_turn(Expect(**expected), outcome) if not c.passed]
        if failed:
            said = self.transcript[-1][0]
            lines = [f"after {said!r} the assistant said {self.reply.text!r}"]
            lines += [f"  {c.evaluator}: expected {c.expected}, got {c.got}" for c in failed]
            raise AssertionError("\n".join(lines))
        return self

    def slots(self) -> dict[str, str]:
        frame = self.assistant.state(self.conversation_id).flow
        return dict(frame.slots) if frame else {}
