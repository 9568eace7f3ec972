"""Fuzzing the flow YAML loader: any file in ``flows/`` gives flow specs or a
:class:`~cxbot.errors.FlowSpecError` naming the file (and a line within it, when known)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from fuzzing import ROOT, SLOW_EXAMPLES, default_examples, fuzz, json_values, mutated_text
from hypothesis import strategies as st

from cxbot.errors import FlowSpecError
from cxbot.flows.actions import builtin_actions
from cxbot.flows.spec import load_flows

SOURCES = [
    p.read_text(encoding="utf-8")
    for p in sorted((ROOT / "flows").glob("*.yaml"))
    if p.name != "intents.yaml"
]
ACTIONS = tuple(builtin_actions())

yaml_text = st.one_of(
    mutated_text(st.sampled_from(SOURCES)),
    st.text(max_size=400),
    st.text(alphabet=":-[]{}|>&*!%@`'\"#\n\t ?,abc123", max_size=300),
    json_values().map(json.dumps),
)


def _run(examples: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "book_appointment.yaml"

        def check(text: str) -> None:
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
            try:
                flows = load_flows(path.parent, actions=ACTIONS)
            except FlowSpecError as err:
                assert err.file == str(path)
                lines = text.count("\n") + 1
                assert err.line is None or 1 <= err.line <= lines + 1, err
            else:
                assert set(flows) == {"book_appointment"}

        fuzz(examples, check, yaml_text)


def test_flow_loader_fuzz() -> None:
    _run(default_examples(300))


@pytest.mark.slow
@pytest.mark.timeout(3600)  # 10,000 examples; minutes on a busy 2-core machine
def test_flow_loader_fuzz_10k() -> None:
    _run(SLOW_EXAMPLES)
