"""Property-based fuzzing with hypothesis: example counts, shared settings and strategies.

The default suite runs a few examples per target (``CXBOT_FUZZ_EXAMPLES`` overrides the
count); ``make test-slow`` runs the tests marked ``slow``, 10,000 examples per target. No
example database is written: a failure prints the seed and the failing input instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

ROOT = Path(__file__).resolve().parents[2]
"""The repository (the Northwind project)."""
SLOW_EXAMPLES = 10_000


def default_examples(fallback: int) -> int:
    """Examples per target in the default suite: ``CXBOT_FUZZ_EXAMPLES`` or ``fallback``."""
    value = os.environ.get("CXBOT_FUZZ_EXAMPLES")
    return int(value) if value else fallback


def fuzz(examples: int, check: Callable[..., None], *strategies: SearchStrategy[Any]) -> None:
    """Run ``check`` on ``examples`` inputs drawn from ``strategies``."""
    run = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )(given(*strategies)(check))
    run()


characters = st.characters(exclude_categories=()) | st.sampled_from(["\ud800", "\udfff", "\x00"])
"""Any code point — lone surrogates and control characters included, and often."""


def json_values(max_leaves: int = 12) -> SearchStrategy[Any]:
    """Any JSON value: scalars, lists and objects, nested."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(characters, max_size=40)
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


@st.composite
def mutated_text(draw: st.DrawFn, sources: SearchStrategy[str]) -> str:
    """A real file's text with a few edits: lines dropped, repeated or swapped, characters
    inserted, deleted or replaced, and the text cut short."""
    text = draw(sources)
    for _ in range(draw(st.integers(0, 4))):
        lines = text.split("\n")
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        match draw(st.sampled_from(["drop", "repeat", "swap", "insert", "delete", "cut"])):
            case "drop":
                del lines[i]
            case "repeat":
                lines.insert(i, lines[i])
            case "swap":
                j = draw(st.integers(0, len(lines) - 1))
                lines[i], lines[j] = lines[j], lines[i]
            case "insert":
                at = draw(st.integers(0, len(lines[i])))
                lines[i] = lines[i][:at] + draw(st.text(max_size=8)) + lines[i][at:]
            case "delete":
                at = draw(st.integers(0, len(lines[i])))
                lines[i] = lines[i][:at] + lines[i][at + draw(st.integers(1, 6)) :]
            case _:
                lines = lines[: i + 1]
        text = "\n".join(lines)
    return text
