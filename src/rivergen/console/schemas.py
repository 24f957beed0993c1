"""View models of the console's pages (plain data, no HTTP)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FormField:
    """One input of a generated form: `name` is the form key (c.host, t.username)."""

    name: str
    label: str
    kind: str  # text, number, password, checkbox, textarea
    required: bool
    value: str
    help: str | None
    secret: bool
    error: str | None = None


@dataclass(frozen=True)
class SourceRow:
    """One line of the sources list."""

    id: int
    name: str
    type: str
    badge: str
    last_checked: str
    last_error_code: str | None
    latency_ms: float | None


@dataclass(frozen=True)
class ChartPoint:
    """One health record drawn on the latency chart (SVG coordinates)."""

    x: float
    y: float
    ms: float
    ok: bool
    at: str


@dataclass
class FormState:
    """What the source form shows: fields of the chosen engine and of the tunnel, and errors."""

    engine: str
    name: str
    description: str
    interval: str
    use_tunnel: bool
    fields: list[FormField]
    tunnel_fields: list[FormField]
    errors: dict[str, str] = field(default_factory=dict)
    general_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
