"""What the OpenAPI document says of data-source bodies: one variant per engine, from the registry.

The HTTP layer reads a body with the plain models of `schemas.py` (an object for `connection`)
and the service validates `connection` with the engine's own model, because the engine is only
known once `type` is read. The document must still say exactly what is accepted, so each plain
model's JSON Schema is replaced by a union discriminated on `type`: for every engine of
`connectors.registry.ENGINES`, a variant whose `type` is the engine's key or one of its aliases
and whose `connection` is the engine's connection model, the very model the service validates
with. An engine added to the registry appears here by itself.

- create and the unsaved test: `connection` is the engine's model; file engines take no tunnel;
- PATCH: with `type`, `connection` holds any of that engine's fields (they are merged into the
  stored ones); without `type` the stored engine stays and `connection` is any engine's fields.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from functools import cache
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, TypeAdapter, create_model
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from rivergen.connectors.base import EngineSpec
from rivergen.connectors.registry import ENGINES
from rivergen.tunnels.schemas import SshTunnelConfig

JsonSchema = dict[str, Any]


def engine_names(spec: EngineSpec) -> tuple[str, ...]:
    """The values of `type` that select the engine: its key, then its aliases."""
    return (spec.key, *spec.aliases)


def all_engine_names() -> tuple[str, ...]:
    """Every accepted value of `type`, in registry order."""
    return tuple(name for spec in ENGINES.values() for name in engine_names(spec))


def _no_defaults(schema: JsonSchema) -> None:
    # A PATCH field has no default: an omitted one keeps the stored value.
    for prop in schema.get("properties", {}).values():
        prop.pop("default", None)


@cache
def partial_model(model: type[BaseModel]) -> type[BaseModel]:
    """`model` with every field optional and no defaults, for a PATCH (documentation only)."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        optional = copy.copy(info)
        optional.default, optional.default_factory = None, None
        fields[name] = (info.annotation, optional)
    partial: type[BaseModel] = create_model(
        f"{model.__name__}Patch",
        __base__=model,
        __config__=None,
        **fields,
    )
    partial.model_config["json_schema_extra"] = _no_defaults
    partial.model_rebuild(force=True)
    return partial


def _fields_of(model: type[BaseModel], skip: Iterable[str]) -> dict[str, Any]:
    return {
        name: (info.annotation, info)
        for name, info in model.model_fields.items()
        if name not in set(skip)
    }


def _variant(
    plain: type[BaseModel],
    spec: EngineSpec,
    *,
    patch: bool,
) -> type[BaseModel]:
    """One engine's variant of a plain body model."""
    names = engine_names(spec)
    kind = Literal[names]  # type: ignore[valid-type]
    fields = _fields_of(plain, ("type", "connection", "ssh_tunnel"))
    fields["type"] = (kind, Field(description=f"{spec.label}: one of {', '.join(names)}"))
    if patch:
        connection: Any = partial_model(spec.connection_model) | None
        fields["connection"] = (connection, None)
        tunnel: Any = None if spec.file_based else partial_model(SshTunnelConfig) | None
        fields["ssh_tunnel"] = (tunnel, None)
    else:
        fields["connection"] = (spec.connection_model, ...)
        tunnel = None if spec.file_based else SshTunnelConfig | None
        fields["ssh_tunnel"] = (tunnel, None)
    model: type[BaseModel] = create_model(
        f"{plain.__name__}{spec.key.title().replace('-', '')}",
        __config__=ConfigDict(extra="forbid", title=f"{plain.__name__} ({spec.label})"),
        __doc__=f"{plain.__doc__ or ''} Engine: {spec.label}.",
        **fields,
    )
    if patch:
        model.model_config["json_schema_extra"] = _no_defaults
        model.model_rebuild(force=True)
    return model


def _keep_engine(plain: type[BaseModel]) -> type[BaseModel]:
    """The PATCH variant without `type`: the stored engine stays, `connection` is any engine's."""
    partials = tuple(partial_model(spec.connection_model) for spec in _distinct_models())
    fields = _fields_of(plain, ("type", "connection", "ssh_tunnel"))
    connection: Any = Union[(*partials, None)]
    fields["connection"] = (connection, None)
    fields["ssh_tunnel"] = (partial_model(SshTunnelConfig) | None, None)
    model: type[BaseModel] = create_model(
        f"{plain.__name__}SameEngine",
        __config__=ConfigDict(
            extra="forbid",
            title=f"{plain.__name__} (same engine)",
            json_schema_extra=_no_defaults,
        ),
        __doc__="A change that keeps the stored engine: `connection` holds its fields.",
        **fields,
    )
    return model


def _distinct_models() -> list[EngineSpec]:
    seen: dict[type[BaseModel], EngineSpec] = {}
    for spec in ENGINES.values():
        seen.setdefault(spec.connection_model, spec)
    return list(seen.values())


@cache
def body_union(plain: type[BaseModel], patch: bool) -> Any:
    """The discriminated union documenting `plain` (a body model of `schemas.py`)."""
    variants = tuple(_variant(plain, spec, patch=patch) for spec in ENGINES.values())
    tagged: Any = Annotated[Union[variants], Field(discriminator="type")]  # noqa: UP007
    if patch:
        return Union[tagged, _keep_engine(plain)]  # noqa: UP007
    return tagged


def documented_as_union(
    patch: bool = False,
) -> Callable[[type[BaseModel], core_schema.CoreSchema, GetJsonSchemaHandler], JsonSchemaValue]:
    """A `__get_pydantic_json_schema__` that documents a plain body model as its union."""

    def schema(
        cls: type[BaseModel], _core: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        adapter: TypeAdapter[Any] = TypeAdapter(body_union(cls, patch))
        return handler(adapter.core_schema)

    return schema
