"""cxbot as rasa-sdk custom actions, for an existing Rasa assistant.

Run them in an action server::

    CXBOT_PROJECT=/path/to/project python -m rasa_sdk --actions cxbot.integrations.rasa_actions

* ``action_cxbot_answer`` — the latest user message goes through cxbot's turn (input
  guardrails, knowledge answer with citations, output guardrails, handoff triggers) in the
  conversation ``rasa:<sender_id>``; the reply is uttered with a ``custom`` payload
  (``route``, ``citations``, ``handoff``) and the slots ``cxbot_route`` and ``cxbot_handoff``
  are set.
* ``action_cxbot_handoff`` — a :class:`~cxbot.handoff.summary.HandoffSummary` of the Rasa
  conversation (user messages PII-redacted by cxbot's input guardrails, Rasa's non-empty
  slots as the task's slots) is uttered as a ``custom`` payload and stored in the slot
  ``cxbot_handoff_summary``; the reason is the slot ``handoff_reason`` or
  ``customer_request``.

The customer's id, when Rasa knows it, is read from the slot ``customer_id``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from cxbot.errors import ConfigError, UnknownCustomer

if TYPE_CHECKING:
    from cxbot.assistant import Assistant

__all__ = ["ActionCxbotAnswer", "ActionCxbotHandoff", "assistant", "use_assistant"]

_bot: Assistant | None = None
_lock = threading.Lock()


def use_assistant(bot: Assistant | None) -> None:
    """Serve these actions from ``bot`` (instead of ``$CXBOT_PROJECT``); ``None`` resets."""
    global _bot
    with _lock:
        _bot = bot


def assistant() -> Assistant:
    """The assistant of ``$CXBOT_PROJECT`` (default: the current folder), built once."""
    global _bot
    with _lock:
        if _bot is None:
            from cxbot.assistant import Assistant

            root = Path(os.environ.get("CXBOT_PROJECT", "."))
            if not (root / "cxbot.yaml").exists():
                raise ConfigError(f"{root.resolve()}: no cxbot.yaml (set CXBOT_PROJECT)")
            _bot = Assistant.from_dir(root)
        return _bot


def _conversation(tracker: Tracker) -> str:
    return f"rasa:{tracker.sender_id}"


class ActionCxbotAnswer(Action):  # type: ignore[misc]
    def name(self) -> str:
        return "action_cxbot_answer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        bot = assistant()
        text = str((tracker.latest_message or {}).get("text") or "")
        customer = tracker.get_slot("customer_id")
        try:
            reply = await bot.arespond(_conversation(tracker), text, customer_id=customer)
        except UnknownCustomer:
            reply = await bot.arespond(_conversation(tracker), text)
        payload: dict[str, Any] = {
            "route": reply.route,
            "intent": reply.intent,
            "citations": [{"source": c.source, "title": c.title} for c in reply.citations],
            "handoff": None,
        }
        if reply.handoff is not None:
            payload["handoff"] = reply.handoff.model_dump(mode="json")
        dispatcher.utter_message(text=reply.text, json_message={"cxbot": payload})
        return [
            SlotSet("cxbot_route", reply.route),
            SlotSet("cxbot_handoff", reply.handoff is not None),
        ]


class ActionCxbotHandoff(Action):  # type: ignore[misc]
    def name(self) -> str:
        return "action_cxbot_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        summary = assistant().summarise_transcript(
            _conversation(tracker),
            _transcript(tracker),
            reason=str(tracker.get_slot("handoff_reason") or "customer_request"),
            customer_id=tracker.get_slot("customer_id"),
            slots={
                name: str(value)
                for name, value in (tracker.slots or {}).items()
                if value not in (None, "", []) and not str(name).startswith("cxbot_")
            },
        )
        data = summary.model_dump(mode="json")
        dispatcher.utter_message(
            text=summary.as_text(), json_message={"cxbot": {"handoff_summary": data}}
        )
        return [SlotSet("cxbot_handoff_summary", data), SlotSet("cxbot_handoff", True)]


def _transcript(tracker: Tracker) -> list[tuple[str, str, str | None]]:
    """(speaker, text, intent) of the Rasa conversation's messages."""
    lines: list[tuple[str, str, str | None]] = []
    for event in tracker.events or []:
        kind, text = event.get("event"), event.get("text")
        if not text:
            continue
        if kind == "user":
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            lines.append(("customer", str(text), intent))
        elif kind == "bot":
            lines.append(("assistant", str(text), None))
    return lines
