"""What the console shows, computed from the services' answers (no HTTP, no store access)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from rivergen.console.schemas import ChartPoint, FormField, FormState, SourceRow
from rivergen.datasources.schemas import DataSourceCreate, DataSourceOut, EngineField
from rivergen.health.schemas import HealthRecordOut
from rivergen.tunnels.schemas import SshTunnelConfig

CHART_WIDTH, CHART_HEIGHT = 600.0, 160.0


def badge(source: DataSourceOut, now: datetime | None = None) -> str:
    """The stored status, or `stale` when the last check is older than twice the interval."""
    now = now or datetime.now(UTC)
    interval = source.health_check_interval_seconds
    if interval and source.last_tested_at is not None:
        age = (now - _utc(source.last_tested_at)).total_seconds()
        if age > 2 * interval:
            return "stale"
    return source.status


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """`3 min ago`, `never`; coarse on purpose, a list is read at a glance."""
    if when is None:
        return "never"
    seconds = max(0, int(((now or datetime.now(UTC)) - _utc(when)).total_seconds()))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def _utc(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def source_rows(sources: list[DataSourceOut], badge_filter: str | None) -> list[SourceRow]:
    """List lines; the stale filter is applied here since the store keeps no such status."""
    now = datetime.now(UTC)
    rows = [
        SourceRow(
            id=s.id,
            name=s.name,
            type=s.type,
            badge=badge(s, now),
            last_checked=ago(s.last_tested_at, now),
            last_error_code=s.last_error_code,
            latency_ms=s.last_response_time_ms,
        )
        for s in sources
    ]
    return [r for r in rows if not badge_filter or r.badge == badge_filter]


def chart_points(history: list[HealthRecordOut]) -> list[ChartPoint]:
    """Oldest-first points scaled to the chart; a failed check with no time sits on the axis."""
    ordered = list(reversed(history))
    top = max((r.response_time_ms or 0.0 for r in ordered), default=0.0) or 1.0
    step = CHART_WIDTH / max(1, len(ordered) - 1)
    return [
        ChartPoint(
            x=round(i * step if len(ordered) > 1 else CHART_WIDTH / 2, 1),
            y=round(CHART_HEIGHT - (r.response_time_ms or 0.0) / top * (CHART_HEIGHT - 10), 1),
            ms=r.response_time_ms or 0.0,
            ok=r.connection_successful,
            at=r.tested_at.isoformat(timespec="seconds"),
        )
        for i, r in enumerate(ordered)
    ]


def _kind(field_type: str, secret: bool, name: str) -> str:
    if secret:
        return "textarea" if "key" in name and "passphrase" not in name else "password"
    if field_type == "integer":
        return "number"
    if field_type == "boolean":
        return "checkbox"
    return "text"


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def engine_fields(
    fields: list[EngineField], prefix: str, values: dict[str, str]
) -> list[FormField]:
    """Inputs generated from the engine catalogue: one per field, secrets as password inputs."""
    out = []
    for f in fields:
        key = f"{prefix}.{f.name}"
        default = "" if f.default is None or f.secret else str(f.default)
        out.append(
            FormField(
                name=key,
                label=_label(f.name),
                kind=_kind(f.type, f.secret, f.name),
                required=f.required,
                value="" if f.secret else values.get(key, default),
                help=f.description,
                secret=f.secret,
            )
        )
    return out


def tunnel_fields(values: dict[str, str]) -> list[EngineField]:
    """The SSH tunnel's fields, from its own model's schema like an engine's."""
    schema = SshTunnelConfig.model_json_schema()
    required = set(schema.get("required", []))
    secrets = {"password", "private_key", "private_key_passphrase", "passphrase"}
    fields = []
    for name, prop in schema.get("properties", {}).items():
        kinds = [p.get("type") for p in prop.get("anyOf", []) if p.get("type") != "null"]
        field_type = str(prop.get("type") or (kinds[0] if kinds else "string"))
        fields.append(
            EngineField(
                name=name,
                type=field_type,
                required=name in required,
                default=prop.get("default"),
                secret=name in secrets,
                description=prop.get("description"),
            )
        )
    return fields


def _value(raw: str, field: EngineField) -> Any:
    if field.type == "integer":
        try:
            return int(raw)
        except ValueError:
            return raw
    if field.type == "boolean":
        return raw in {"on", "true", "1"}
    return raw


def body_from_form(
    form: dict[str, str], fields: list[EngineField], tunnel: list[EngineField]
) -> dict[str, Any]:
    """The create body the API would receive; blank inputs are left out (defaults apply)."""
    connection = {
        f.name: _value(form[f"c.{f.name}"], f)
        for f in fields
        if form.get(f"c.{f.name}", "") != "" or (f.type == "boolean" and f"c.{f.name}" in form)
    }
    body: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "type": form.get("type", ""),
        "connection": connection,
    }
    if form.get("description", "").strip():
        body["description"] = form["description"].strip()
    if form.get("interval", "").strip():
        body["health_check_interval_seconds"] = _value(
            form["interval"].strip(),
            EngineField(name="i", type="integer", required=False, secret=False),
        )
    if form.get("use_tunnel") == "on":
        body["ssh_tunnel"] = {
            f.name: _value(form[f"t.{f.name}"], f) for f in tunnel if form.get(f"t.{f.name}", "")
        }
    return body


def field_errors(error: ValidationError | list[dict[str, Any]]) -> dict[str, str]:
    """Map validation errors (pydantic's or the envelope's details) to form input names."""
    items = error.errors() if isinstance(error, ValidationError) else error
    out: dict[str, str] = {}
    for item in items:
        loc = item.get("loc") or str(item.get("field", "")).split(".")
        parts = [str(p) for p in loc if str(p) != "body"]
        if parts[:1] == ["connection"]:
            key = "c." + ".".join(parts[1:2])
        elif parts[:1] == ["ssh_tunnel"]:
            key = "t." + ".".join(parts[1:2])
        elif parts[:1] == ["health_check_interval_seconds"]:
            key = "interval"
        else:
            key = ".".join(parts[:1]) or "form"
        out.setdefault(key, str(item.get("msg") or item.get("message") or "Invalid value"))
    return out


def validate_create(body: dict[str, Any]) -> DataSourceCreate:
    """The body as the API's model, or pydantic's ValidationError."""
    return DataSourceCreate.model_validate(body)


def with_errors(state: FormState, errors: dict[str, str]) -> FormState:
    """The form state with each error on its field; the rest shown at the top."""
    known = {f.name for f in state.fields + state.tunnel_fields} | {"name", "interval", "type"}
    state.errors = errors
    loose = [f"{k}: {v}" for k, v in errors.items() if k not in known]
    state.general_error = "; ".join(loose) or None
    return state
