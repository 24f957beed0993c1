"""Reading configuration files: YAML (or JSON) with `${VAR}` references to the environment."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\$")


class ConfigFileError(Exception):
    """A file that cannot be read or used; the message never holds a secret value."""


def read_document(path: str) -> Any:
    """The parsed YAML (JSON is YAML) of `path`, or of stdin for "-"."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        # The parser's own message may quote the offending text, which may be a secret.
        raise ConfigFileError(f"{path} is not valid YAML{where}") from None


def expand(value: Any, where: str = "") -> Any:
    """`value` with every `${VAR}` in its strings replaced from the environment (`$$` is `$`)."""
    if isinstance(value, dict):
        return {k: expand(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        found = os.environ.get(name)
        if found is None:
            raise ConfigFileError(f"{where}: the environment variable {name} is not set")
        return found

    return _REFERENCE.sub(replace, value)


def references(value: Any) -> bool:
    """Whether a string holds a `${VAR}` reference."""
    return isinstance(value, str) and any(m.group(1) for m in _REFERENCE.finditer(value))
