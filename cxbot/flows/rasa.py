"""rasa-sdk, both ways.

**Rasa actions in cxbot flows.** A flow's ``action: rasa.<name>`` runs the rasa-sdk action
``<name>`` after confirmation — in-process through rasa-sdk's ``ActionExecutor`` (the
package named by ``rasa.actions_package`` in ``cxbot.yaml``) or through a running action
server (``rasa.action_server``, its ``/webhook`` URL). The action receives the Rasa
webhook payload (tracker with the flow's slots and the latest message); what it returns
maps back to cxbot: ``slot`` events become slot values (and template variables of the
flow's ``done`` text), the texts it uttered become ``{{ response }}``, and an ``action``
that sets the slot ``cxbot_conflict`` to a list of alternatives reports a conflict.

**cxbot actions in a Rasa assistant.** This module also defines ``action_cxbot_answer``
and ``action_cxbot_handoff`` (see :class:`ActionCxbotAnswer`) for an existing action
server::

    CXBOT_PROJECT=/path/to/project python -m rasa_sdk --actions cxbot.flows.rasa

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

import asyncio
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from cxbot.errors import BackendError, ConfigError, UnknownCustomer
from cxbot.flows.actions.base import ActionContext, ActionResult

if TYPE_CHECKING:
    from cxbot.assistant import Assistant

__all__ = [
    "CONFLICT_SLOT",
    "PREFIX",
    "ActionCxbotAnswer",
    "ActionCxbotHandoff",
    "RasaActionRunner",
    "RasaActions",
    "assistant",
    "tracker_payload",
    "use_assistant",
]

PREFIX = "rasa."
CONFLICT_SLOT = "cxbot_conflict"


def tracker_payload(
    action: str,
    sender_id: str,
    slots: Mapping[str, Any],
    *,
    latest_text: str = "",
    intent: str | None = None,
    events: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The body rasa's ``/webhook`` expects for running ``action``."""
    return {
        "next_action": action,
        "sender_id": sender_id,
        "version": "3.0",
        "tracker": {
            "sender_id": sender_id,
            "slots": dict(slots),
            "latest_message": {
                "text": latest_text,
                "intent": {"name": intent, "confidence": 1.0} if intent else {},
                "entities": [],
            },
            "events": events or [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        },
        "domain": {"slots": {name: {"type": "any"} for name in slots}},
    }


class RasaActionRunner:
    """Runs rasa-sdk actions in-process (``package``) or on an action server (``url``)."""

    def __init__(
        self, *, package: str | None = None, url: str | None = None, timeout_s: float = 10.0
    ) -> None:
        if not package and not url:
            raise ConfigError("rasa: set actions_package or action_server")
        self.package = package
        self.url = url
        self.timeout_s = timeout_s
        self._executor: Any = None
        self._lock = threading.Lock()

    def _local(self) -> Any:
        if self._executor is None:
            with self._lock:
                if self._executor is None:
                    from rasa_sdk.executor import ActionExecutor

                    executor = ActionExecutor()
                    try:
                        executor.register_package(self.package)
                    except ImportError as exc:
                        raise ConfigError(
                            f"rasa.actions_package {self.package!r} cannot be imported: {exc}"
                        ) from exc
                    self._executor = executor
        return self._executor

    def names(self) -> list[str]:
        """Actions known in-process (an action server is asked only when called)."""
        if not self.package:
            return []
        return sorted(self._local().actions)

    def run(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The action's response: ``{"events": [...], "responses": [...]}``."""
        if self.package:
            executor = self._local()
            if payload["next_action"] in executor.actions:
                result = _run_coroutine(executor.run(payload))
                return {"events": result.events, "responses": result.responses}
            if not self.url:
                raise ConfigError(f"no rasa action {payload['next_action']!r} in {self.package}")
        return self._post(payload)

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        assert self.url is not None
        request = urllib.request.Request(
            self.url,
            data=json.dumps(payload).encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body: dict[str, Any] = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            raise BackendError(
                f"rasa action server {self.url}: HTTP {exc.code} for "
                f"{payload['next_action']}: {detail}"
            ) from exc
        except (urllib.error.URLError, TimeoutError, ValueError) as exc:
            raise BackendError(f"rasa action server {self.url}: {exc}") from exc
        return body

    def action(self, name: str) -> RasaFlowAction:
        return RasaFlowAction(self, name)


class RasaFlowAction:
    """A cxbot flow action that runs one rasa-sdk action and maps its events back."""

    def __init__(self, runner: RasaActionRunner, name: str) -> None:
        self.runner = runner
        self.name = name

    def __call__(self, slots: Mapping[str, str], ctx: ActionContext) -> ActionResult:
        payload = tracker_payload(
            self.name,
            ctx.customer_id or "anonymous",
            {**slots, "customer_id": ctx.customer_id, "now": ctx.now.isoformat()},
        )
        response = self.runner.run(payload)
        values: dict[str, str] = {}
        options: tuple[str, ...] = ()
        for event in response.get("events") or []:
            if event.get("event") != "slot":
                continue
            name, value = str(event.get("name")), event.get("value")
            if name == CONFLICT_SLOT and value:
                options = tuple(str(v) for v in (value if isinstance(value, list) else [value]))
            elif value is not None:
                values[name] = str(value)
        texts = [str(r["text"]) for r in response.get("responses") or [] if r.get("text")]
        values["response"] = " ".join(texts)
        if options:
            return ActionResult("conflict", values, options)
        return ActionResult("done", values)


class RasaActions(Mapping[str, Any]):
    """The flow actions named ``rasa.<name>``: those of the in-process package, or any
    name when an action server is configured (it answers for its own actions)."""

    def __init__(self, runner: RasaActionRunner) -> None:
        self.runner = runner
        self._known = [f"{PREFIX}{n}" for n in runner.names()]

    def __getitem__(self, key: str) -> RasaFlowAction:
        if key not in self:
            raise KeyError(key)
        return self.runner.action(key[len(PREFIX) :])

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str) or not key.startswith(PREFIX):
            return False
        return key in self._known or bool(self.runner.url)

    def __iter__(self) -> Iterator[str]:
        return iter(self._known)

    def __len__(self) -> int:
        return len(self._known)


def _run_coroutine(coroutine: Any) -> Any:
    """Run ``coroutine`` to completion from sync code, inside or outside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    result: list[Any] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coroutine))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


# -- cxbot's own actions, for a Rasa action server ------------------------------------------
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
