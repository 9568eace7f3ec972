"""YAML → pydantic with file and line numbers in every error.

ruamel.yaml keeps the line of each mapping key and sequence item; a pydantic
``ValidationError`` names the path of the bad value; together they give
``flows/book.yaml:12: slots.0.type: Input should be 'text', 'date', … (fix: …)``.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from cxbot.errors import ConfigError

__all__ = ["load_yaml_model", "read_yaml"]

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path, *, error: type[ConfigError] = ConfigError) -> Any:
    """Parse a YAML file, keeping line information; syntax errors name the line."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error("file not found", file=path) from None
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text ({exc.reason})", file=path) from None
    try:
        return YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise error(
            f"YAML syntax error: {exc.problem or exc.context}",
            file=path,
            line=line,
            fix="check indentation and quoting on that line",
        ) from None
    except ReaderError as exc:  # a character YAML does not allow (a control character)
        raise error(
            f"YAML cannot contain the character U+{int(exc.character):04X}",
            file=path,
            line=text.count("\n", 0, max(exc.position, 0)) + 1,
            fix="remove it or write it as an escape in a double-quoted string",
        ) from None
    except YAMLError as exc:  # any other problem ruamel.yaml reports
        raise error(f"YAML error: {exc}", file=path) from None


def _line_of(data: Any, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the deepest node on ``loc`` that ruamel recorded."""
    line: int | None = None
    node = data
    for key in loc:
        lc = getattr(node, "lc", None)
        try:
            if lc is not None:
                if isinstance(key, int) and isinstance(node, list):
                    line = lc.item(key)[0] + 1
                elif isinstance(key, str) and isinstance(node, dict) and key in node:
                    line = lc.key(key)[0] + 1
            node = node[key]
        except (KeyError, IndexError, TypeError):
            break
    top = getattr(getattr(data, "lc", None), "line", None)  # None on a tagged scalar
    if line is None and isinstance(top, int):
        line = top + 1
    return line


def _fix_for(model: type[BaseModel], err: Any, errors: list[Any]) -> str | None:
    """A human fix for one pydantic error: close spellings for unknown keys, allowed values."""
    if err["type"] == "extra_forbidden":
        key = str(err["loc"][-1])
        parent = tuple(err["loc"][:-1])
        missing = [
            str(e["loc"][-1])
            for e in errors
            if e["type"] == "missing" and tuple(e["loc"][:-1]) == parent
        ]
        if missing:
            best = difflib.get_close_matches(key, missing, n=1, cutoff=0.0)[0]
            return f"did you mean '{best}'? '{key}' is not a valid key here"
        target: Any = model
        for part in err["loc"][:-1]:
            if isinstance(part, int):
                continue
            field = getattr(target, "model_fields", {}).get(part)
            if field is None:
                target = None
                break
            target = _model_in(field.annotation)
        valid = sorted(getattr(target, "model_fields", {})) if target is not None else []
        close = difflib.get_close_matches(key, valid, n=1)
        if close:
            return f"did you mean '{close[0]}'? valid keys: {', '.join(valid)}"
        return f"remove '{key}'; valid keys: {', '.join(valid)}" if valid else None
    if err["type"] == "missing":
        return f"add '{err['loc'][-1]}'"
    return None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def load_yaml_model(
    path: Path,
    model: type[M],
    *,
    error: type[ConfigError] = ConfigError,
    data: Any = None,
    context: dict[str, Any] | None = None,
) -> M:
    """Validate a YAML file (or already-read ``data`` from it) into ``model``."""
    if data is None:
        data = read_yaml(path, error=error)
    if data is None:
        data = {}
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        errors = exc.errors()
        # a misspelt key also makes the right key "missing": report the misspelling
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        loc = tuple(first["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        raise error(
            f"{where}: {first['msg']}",
            file=path,
            line=_line_of(data, loc),
            fix=_fix_for(model, first, errors),
        ) from None
