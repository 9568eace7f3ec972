from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from cxbot.assistant import Assistant
from cxbot.errors import FlowSpecError
from cxbot.flows.actions import builtin_actions
from cxbot.flows.spec import FlowSpec, flow_json_schema, load_flows

ROOT = Path(__file__).resolve().parents[2]

VALID = """\
# a small flow used to break one thing at a time
name: book_visit
description: Book a visit to a branch.
examples:
  - book a visit
  - I want to visit a branch
  - can I come in
slots:
  - name: branch
    type: choice
    choices: [North, South]
    ask: Which branch, {{ options }}?
    reask: Please pick {{ options }}.
  - name: day
    type: date
    validators: [future, open_day]
    ask: Which day?
confirm: Book {{ branch }} on {{ day }}?
action: calendar.book
done: Booked.
cancelled: Not booked.
conflict:
  slot: day
  message: That day is taken; try {{ options }}.
"""


def load(folder: Path) -> dict[str, FlowSpec]:
    return load_flows(folder, actions=builtin_actions())


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def broken(tmp_path: Path, old: str, new: str, *, name: str = "book_visit") -> tuple[Path, str]:
    assert old in VALID
    text = VALID.replace(old, new, 1)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path, text


def test_loads_the_project_flows_with_slots_in_order() -> None:
    flows = load(ROOT / "flows")

    assert sorted(flows) == ["book_appointment", "cancel_appointment", "reschedule_appointment"]
    assert [s.name for s in flows["book_appointment"].slots] == ["branch", "topic", "date", "time"]
    assert [s.name for s in flows["cancel_appointment"].slots] == ["appointment"]
    assert [s.name for s in flows["reschedule_appointment"].slots] == [
        "appointment",
        "date",
        "time",
    ]
    assert flows["cancel_appointment"].requires_customer
    assert not flows["book_appointment"].requires_customer
    assert flows["book_appointment"].conflict is not None
    assert flows["book_appointment"].conflict.slot == "time"


def test_valid_sample_flow_loads(tmp_path: Path) -> None:
    (tmp_path / "book_visit.yaml").write_text(VALID, encoding="utf-8")

    flows = load(tmp_path)

    assert list(flows) == ["book_visit"]
    assert flows["book_visit"].slots[0].choices == ("North", "South")


def test_yaml_indentation_error_names_file_and_line(tmp_path: Path) -> None:
    path, text = broken(tmp_path, "    type: date\n", "      type: date\n")

    with pytest.raises(FlowSpecError) as info:
        load(tmp_path)

    err = info.value
    assert err.file == str(path)
    assert err.line == line_of(text, "      type: date")
    assert err.reason.startswith("YAML syntax error")
    assert err.fix is not None and "indentation" in err.fix
    assert str(err).startswith(f"{path}:{err.line}: YAML syntax error")


def test_misspelt_optional_key_suggests_the_close_key(tmp_path: Path) -> None:
    path, text = broken(tmp_path, "    reask: Please", "    reaks: Please")

    with pytest.raises(FlowSpecError) as info:
        load(tmp_path)

    err = info.value
    assert err.file == str(path)
    assert err.line == line_of(text, "reaks:")
    assert "slots.0.reaks" in err.reason
    assert "Extra inputs are not permitted" in err.reason
    assert err.fix is not None and err.fix.startswith("did you mean 'reask'?")


def test_misspelt_required_key_points_at_the_typo(tmp_path: Path) -> None:
    path, text = broken(tmp_path, "    ask: Which day?", "    aks: Which day?")

    with pytest.raises(FlowSpecError) as info:
        load(tmp_path)

    err = info.value
    assert err.file == str(path)
    assert err.line == line_of(text, "aks:")
    assert err.fix is not None and "did you mean 'ask'" in err.fix


def test_misspelt_required_key_names_the_key_expected(tmp_path: Path) -> None:
    path, text = broken(tmp_path, "    ask: Which day?", "    promt: Which day?")

    with pytest.raises(FlowSpecError) as info:
        load(tmp_path)

    err = info.value
    assert err.file == str(path)
    assert err.line in (line_of(text, "- name: day"), line_of(text, "promt:"))
    assert "slots.1." in err.reason
    assert "'ask'" in (err.fix or "")


@pytest.mark.parametrize(
    ("old", "new", "needle", "words"),
    [
        pytest.param(
            "type: date",
            "type: datetime",
            "type: datetime",
            ("slots.1.type", "'date'", "'choice'"),
            id="slot-type",
        ),
        pytest.param(
            "action: calendar.book",
            "action: calendar.bokk",
            "action:",
            ("unknown action 'calendar.bokk'", "calendar.book", "calendar.reschedule"),
            id="unknown-action",
        ),
        pytest.param(
            "    choices: [North, South]\n",
            "",
            "- name: branch",
            ("slots.0", "choice slot 'branch' needs 'choices' or 'choices_from'"),
            id="choice-without-choices",
        ),
        pytest.param(
            "  - can I come in\n",
            "",
            "examples:",
            ("examples", "at least 3"),
            id="two-examples",
        ),
        pytest.param(
            "validators: [future, open_day]",
            "validators: [future, weekday]",
            "validators:",
            ("slots.1.validators", "'open_day'"),
            id="unknown-validator",
        ),
    ],
)
def test_invalid_value_names_file_line_and_problem(
    tmp_path: Path, old: str, new: str, needle: str, words: tuple[str, ...]
) -> None:
    path, text = broken(tmp_path, old, new)

    with pytest.raises(FlowSpecError) as info:
        load(tmp_path)

    err = info.value
    assert err.file == str(path)
    assert err.line == line_of(text, needle)
    for word in words:
        assert word in err.reason


def test_flow_name_must_match_file_name(tmp_path: Path) -> None:
    path, text = broken(tmp_path, "name: book_visit", "name: book_vist")

    with pytest.raises(FlowSpecError) as info:
        load(tmp_path)

    err = info.value
    assert err.file == str(path)
    assert err.line == line_of(text, "name: book_vist") == 2
    assert "'book_vist' differs from the file name" in err.reason
    assert err.fix is not None
    assert "book_vist.yaml" in err.fix and "name: book_visit" in err.fix


def test_conflict_slot_must_be_a_slot_of_the_flow_message(tmp_path: Path) -> None:
    path, _ = broken(tmp_path, "  slot: day", "  slot: hour")

    with pytest.raises(FlowSpecError) as info:
        load(tmp_path)

    assert info.value.file == str(path)
    assert "conflict.slot 'hour' is not a slot of this flow" in info.value.reason


def test_conflict_slot_error_points_at_its_line(tmp_path: Path) -> None:
    _, text = broken(tmp_path, "  slot: day", "  slot: hour")

    with pytest.raises(FlowSpecError) as info:
        load(tmp_path)

    assert info.value.line == line_of(text, "slot: hour")


def test_intents_file_is_not_a_flow(tmp_path: Path) -> None:
    (tmp_path / "book_visit.yaml").write_text(VALID, encoding="utf-8")
    (tmp_path / "intents.yaml").write_text("intents: []\n", encoding="utf-8")

    assert list(load(tmp_path)) == ["book_visit"]


def test_json_schema_is_serialisable_and_describes_slots() -> None:
    schema = flow_json_schema()

    assert isinstance(schema, dict)
    decoded = json.loads(json.dumps(schema))
    slots = decoded["properties"]["slots"]
    assert slots["type"] == "array"
    assert slots["minItems"] == 1
    assert set(decoded["required"]) >= {"name", "examples", "slots", "confirm", "action"}
    slot_schema = decoded["$defs"]["SlotSpec"]
    assert slot_schema["properties"]["type"]["enum"] == [
        "text",
        "choice",
        "date",
        "time",
        "appointment",
    ]


def test_assistant_refuses_a_project_with_a_malformed_flow(
    project: Path, make_bot: Callable[..., Assistant]
) -> None:
    flow = project / "flows" / "cancel_appointment.yaml"
    text = flow.read_text(encoding="utf-8").replace(
        "action: calendar.cancel", "action: calendar.bokk"
    )
    flow.write_text(text, encoding="utf-8")

    with pytest.raises(FlowSpecError) as info:
        make_bot()

    assert info.value.file == str(flow)
    assert info.value.line == line_of(text, "action: calendar.bokk")
    assert "unknown action 'calendar.bokk'" in info.value.reason
