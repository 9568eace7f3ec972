"""rasa-sdk both ways: flows call rasa actions (in-process and on an action server), and
cxbot's own actions answer a Rasa action server's webhook."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk.executor import ActionExecutor

from cxbot.assistant import Assistant
from cxbot.errors import BackendError
from cxbot.flows import rasa
from cxbot.flows.rasa import RasaActionRunner, tracker_payload
from cxbot.testing import TestChat

ACTIONS = """
from rasa_sdk import Action
from rasa_sdk.events import SlotSet


class ActionHoldAppointment(Action):
    def name(self):
        return "action_hold_appointment"

    def run(self, dispatcher, tracker, domain):
        if tracker.get_slot("branch") == "Old Town":
            return [SlotSet("cxbot_conflict", ["Harbour Street", "Riverside"])]
        dispatcher.utter_message(text="Held by the partner system.")
        day = tracker.get_slot("date").replace("-", "")
        return [SlotSet("reference", "R-" + day + "-" + tracker.get_slot("time")[:2])]
"""

DONE = "Booked {{ branch }} on {{ date }}; reference {{ reference }}. {{ response }}"


def _rasa_project(project: Path, package: str, setting: str) -> None:
    (project / package).mkdir()
    (project / package / "__init__.py").write_text(ACTIONS, encoding="utf-8")
    flow = project / "flows" / "book_appointment.yaml"
    text = flow.read_text(encoding="utf-8").replace(
        "action: calendar.book", "action: rasa.action_hold_appointment"
    )
    start = text.index("done: >-")
    end = text.index("cancelled:")
    flow.write_text(text[:start] + f"done: '{DONE}'\n" + text[end:], encoding="utf-8")
    config = project / "cxbot.yaml"
    config.write_text(config.read_text(encoding="utf-8") + f"\nrasa:\n  {setting}\n", "utf-8")


def _book(bot: Assistant, branch: str) -> TestChat:
    chat = TestChat(bot, customer_id="C-1001")
    chat.say(f"I'd like a savings appointment at {branch} on Friday at 11am")
    return chat.say("yes")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def action_server() -> Iterator[Callable[..., str]]:
    """Starts ``python -m rasa_sdk`` on a free loopback port; returns its webhook URL."""
    servers: list[subprocess.Popen[bytes]] = []

    def start(actions: str, cwd: Path, env: dict[str, str] | None = None) -> str:
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "rasa_sdk", "--actions", actions, "--port", str(port)],
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(cwd), **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        servers.append(proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode() if proc.stderr else "exited")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    return f"http://127.0.0.1:{port}/webhook"
            except OSError:
                time.sleep(0.2)
        raise AssertionError("the action server did not start")

    yield start
    for proc in servers:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()


def _post(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, json.dumps(payload).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body: dict[str, Any] = json.loads(response.read())
    return body


# -- rasa actions inside cxbot flows --------------------------------------------------------
def test_flow_runs_a_rasa_action_in_process(
    project: Path, make_bot: Callable[..., Assistant]
) -> None:
    _rasa_project(project, "partner_actions", "actions_package: partner_actions")
    chat = _book(make_bot(), "Riverside")
    assert chat.reply.route == "flow"
    assert "reference R-20261127-11" in chat.reply.text
    assert "Held by the partner system." in chat.reply.text


def test_rasa_conflict_slot_offers_alternatives(
    project: Path, make_bot: Callable[..., Assistant]
) -> None:
    _rasa_project(project, "partner_actions_conflict", "actions_package: partner_actions_conflict")
    chat = _book(make_bot(), "Old Town")
    assert "Harbour Street" in chat.reply.text and "Riverside" in chat.reply.text
    assert "reference" not in chat.reply.text


@pytest.mark.integration
def test_flow_runs_a_rasa_action_on_an_action_server(
    project: Path, make_bot: Callable[..., Assistant], action_server: Callable[..., str]
) -> None:
    (project / "served_actions").mkdir()
    (project / "served_actions" / "__init__.py").write_text(ACTIONS, encoding="utf-8")
    url = action_server("served_actions", project)
    _rasa_project(project, "unused_actions", f"action_server: {url}")
    chat = _book(make_bot(), "Riverside")
    assert "reference R-20261127-11" in chat.reply.text
    assert "Held by the partner system." in chat.reply.text


def test_unreachable_action_server_is_a_backend_error() -> None:
    runner = RasaActionRunner(url=f"http://127.0.0.1:{_free_port()}/webhook", timeout_s=2)
    with pytest.raises(BackendError, match="rasa action server"):
        runner.run(tracker_payload("action_anything", "c1", {}))


# -- cxbot actions inside a Rasa assistant ---------------------------------------------------
def _tracker(text: str, events: list[dict[str, Any]] | None = None, **slots: Any) -> dict[str, Any]:
    return tracker_payload(
        "action_cxbot_answer", "rasa-user-7", slots, latest_text=text, events=events
    )


def test_cxbot_answer_action_in_rasa_executor(bot: Assistant) -> None:
    rasa.use_assistant(bot)
    try:
        executor = ActionExecutor()
        executor.register_package("cxbot.flows.rasa")
        assert {"action_cxbot_answer", "action_cxbot_handoff"} <= set(executor.actions)
        result = rasa._run_coroutine(executor.run(_tracker("How do I report a lost card?")))
    finally:
        rasa.use_assistant(None)
    (message,) = result.responses
    cxbot = message["custom"]["cxbot"]
    assert cxbot["route"] == "rag" and cxbot["citations"]
    assert "card" in message["text"].lower()
    assert {
        "event": "slot",
        "name": "cxbot_route",
        "value": "rag",
        "timestamp": None,
    } in result.events
    assert bot.events("rasa:rasa-user-7"), "the turn is kept in cxbot's conversation store"


@pytest.mark.integration
def test_cxbot_actions_on_a_rasa_action_server(
    project: Path, action_server: Callable[..., str]
) -> None:
    url = action_server("cxbot.flows.rasa", project, {"CXBOT_PROJECT": str(project)})
    answer = _post(url, _tracker("What are the fees on a Premier account?"))
    (message,) = answer["responses"]
    assert message["custom"]["cxbot"]["citations"], message
    assert message["text"]

    history = [
        {
            "event": "user",
            "text": "my card was stolen, email me at jo.bloggs@example.com",
            "parse_data": {"intent": {"name": "report_fraud"}},
        },
        {"event": "bot", "text": "I'm sorry to hear that."},
        {
            "event": "user",
            "text": "I want to talk to a person",
            "parse_data": {"intent": {"name": "human_agent"}},
        },
    ]
    payload = tracker_payload(
        "action_cxbot_handoff",
        "rasa-user-8",
        {"handoff_reason": "fraud", "card_type": "debit"},
        latest_text="I want to talk to a person",
        events=history,
    )
    handoff = _post(url, payload)
    summary = handoff["responses"][0]["custom"]["cxbot"]["handoff_summary"]
    assert summary["reason"] == "fraud"
    assert summary["slots"] == {"handoff_reason": "fraud", "card_type": "debit"}
    assert summary["intent"] == "report_fraud"
    assert "jo.bloggs@example.com" not in json.dumps(handoff)
    assert any("stolen" in m for m in summary["last_user_messages"])
    names = {e["name"] for e in handoff["events"]}
    assert {"cxbot_handoff_summary", "cxbot_handoff"} <= names
