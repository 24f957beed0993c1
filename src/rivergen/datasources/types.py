"""The engine catalogue shown by GET /api/v1/data-source-types."""

from __future__ import annotations

from functools import cache
from typing import Any

from rivergen.connectors.base import EngineSpec
from rivergen.connectors.registry import ENGINES, driver_installed
from rivergen.datasources.schemas import EngineField, EngineOut


def _fields(spec: EngineSpec) -> list[EngineField]:
    schema = spec.connection_model.model_json_schema()
    required = set(schema.get("required", []))
    fields = []
    for name, prop in schema.get("properties", {}).items():
        fields.append(
            EngineField(
                name=name,
                type=_type_name(prop),
                required=name in required,
                default=prop.get("default"),
                secret=name in spec.secret_fields,
                description=prop.get("description"),
            )
        )
    return fields


def _type_name(prop: dict[str, Any]) -> str:
    if "type" in prop:
        return str(prop["type"])
    if "enum" in prop:
        return "enum"
    kinds = [str(p.get("type")) for p in prop.get("anyOf", []) if p.get("type") != "null"]
    return "|".join(kinds) or "any"


@cache
def _static_catalogue() -> tuple[EngineOut, ...]:
    return tuple(
        EngineOut(
            type=spec.key,
            label=spec.label,
            aliases=list(spec.aliases),
            default_port=spec.default_port,
            file_based=spec.file_based,
            driver_installed=False,
            default_test_query=spec.default_query,
            fields=_fields(spec),
            allowed_options=sorted(spec.allowed_options),
            help=spec.help,
        )
        for spec in ENGINES.values()
    )


def engine_catalogue() -> list[EngineOut]:
    """Every engine with its fields, defaults, secret flags and driver availability."""
    return [
        engine.model_copy(update={"driver_installed": driver_installed(ENGINES[engine.type])})
        for engine in _static_catalogue()
    ]
