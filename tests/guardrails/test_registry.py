"""Guardrails are found by name through the ``cxbot.guardrails`` entry points, built-ins and
third-party packages alike."""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cxbot.errors import ConfigError
from cxbot.guardrails.registry import available_guardrails, guardrail_names


def _install_plugin(root: Path, entry: str, module_source: str) -> None:
    """A minimal installed distribution on ``sys.path``: a module and its dist-info."""
    (root / "acme_rails.py").write_text(textwrap.dedent(module_source), encoding="utf-8")
    info = root / "acme_rails-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-rails\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[cxbot.guardrails]\n{entry}\n", encoding="utf-8")


PLUGIN_SOURCE = """
    from cxbot.guardrails import GuardrailPlugin, Verdict

    class NoCrypto:
        name = "no_crypto"

        def warm_up(self):
            return None

        def check(self, text, ctx):
            if "bitcoin" in text.lower():
                return Verdict("block", "crypto is out of scope", 1.0)
            return Verdict("allow")

    NO_CRYPTO = GuardrailPlugin("no_crypto", "input", lambda deps: NoCrypto())
    NOT_A_PLUGIN = object()
"""


def test_builtins_register_through_entry_points() -> None:
    plugins = available_guardrails()
    assert {"pii", "injection"} <= set(guardrail_names("input", plugins))
    assert {"pii_leak", "prompt_leak"} <= set(guardrail_names("output", plugins))
    assert all(plugins[name].name == name for name in plugins)


def test_a_third_party_plugin_is_configured_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, project: Path, make_bot: Callable[..., Any]
) -> None:
    _install_plugin(tmp_path, "no_crypto = acme_rails:NO_CRYPTO", PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "no_crypto" in guardrail_names("input")
    config = project / "cxbot.yaml"
    text = config.read_text(encoding="utf-8")
    configured = re.sub(r"(?m)^  input: \[.*\]$", "  input: [pii, no_crypto]", text)
    assert configured != text
    config.write_text(configured)
    bot = make_bot()
    try:
        reply = bot.respond("c-1", "Do you sell bitcoin?")
        assert reply.route == "blocked"
        blocks = [e for e in bot.events("c-1") if e.kind == "guardrail_triggered"]
        assert [(e.guardrail, e.action) for e in blocks if e.action != "allow"] == [
            ("no_crypto", "block")
        ]
    finally:
        sys.modules.pop("acme_rails", None)


def test_an_entry_point_that_is_not_a_plugin_fails_with_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_plugin(tmp_path, "broken = acme_rails:NOT_A_PLUGIN", PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(ConfigError, match="broken = acme_rails:NOT_A_PLUGIN"):
            available_guardrails()
    finally:
        sys.modules.pop("acme_rails", None)
