"""cxbot.yaml: validation with file, line and fix; environment overrides; cross-references."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxbot.config import load_config
from cxbot.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "cxbot.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def test_sample_project_config_loads() -> None:
    config = load_config(Path(__file__).parent.parent, env={})
    assert config.company == "Northwind Bank"
    assert config.llm.enabled is False
    assert config.guardrails.input == ("pii", "injection", "abuse", "scope")


def test_key_typo_names_file_line_and_closest_key(tmp_path: Path) -> None:
    root = write(tmp_path, "company: Acme\nrag:\n  top_k: 3\n  min_scor: 0.4\n")
    with pytest.raises(ConfigError) as info:
        load_config(root, env={})
    error = info.value
    assert error.file == str(root / "cxbot.yaml")
    assert error.line == 4
    assert "min_scor" in error.reason
    assert error.fix is not None and "min_score" in error.fix
    assert str(error).startswith(f"{root / 'cxbot.yaml'}:4:")


def test_wrong_type_names_the_key_and_line(tmp_path: Path) -> None:
    root = write(tmp_path, "company: Acme\nhandoff:\n  max_failed_turns: lots\n")
    with pytest.raises(ConfigError) as info:
        load_config(root, env={})
    assert info.value.line == 3
    assert "handoff.max_failed_turns" in info.value.reason


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    root = write(tmp_path, "company: Acme\nrag:\n  top_k: [1, 2\n")
    with pytest.raises(ConfigError) as info:
        load_config(root, env={})
    assert info.value.line is not None and info.value.line >= 3
    assert "syntax" in info.value.reason


def test_unknown_guardrail_suggests_the_valid_name(tmp_path: Path) -> None:
    root = write(tmp_path, "guardrails:\n  input:\n    - pii\n    - injektion\n")
    with pytest.raises(ConfigError) as info:
        load_config(root, env={})
    assert info.value.line == 4
    assert info.value.fix is not None and "injection" in info.value.fix


def test_missing_config_explains_how_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, env={})
    assert info.value.fix is not None and "cxbot init" in info.value.fix


def test_environment_overrides_nested_keys(tmp_path: Path) -> None:
    root = write(tmp_path, "company: Acme\nllm:\n  model: small\n")
    config = load_config(
        root,
        env={
            "CXBOT_LLM__BASE_URL": "http://127.0.0.1:9/v1",
            "CXBOT_RAG__TOP_K": "7",
            "UNRELATED": "x",
        },
    )
    assert config.llm.base_url == "http://127.0.0.1:9/v1"
    assert config.llm.model == "small"
    assert config.llm.enabled
    assert config.rag.top_k == 7


def test_bad_environment_override_is_a_config_error(tmp_path: Path) -> None:
    root = write(tmp_path, "company: Acme\n")
    with pytest.raises(ConfigError) as info:
        load_config(root, env={"CXBOT_RAG__TOP_K": "many"})
    assert "rag.top_k" in info.value.reason


def test_every_field_is_described() -> None:
    from pydantic import BaseModel

    from cxbot.config import CxbotConfig

    def walk(model: type[BaseModel], prefix: str) -> list[str]:
        missing = []
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                missing += walk(annotation, f"{prefix}{name}.")
            elif not field.description:
                missing.append(prefix + name)
        return missing

    assert walk(CxbotConfig, "") == []
