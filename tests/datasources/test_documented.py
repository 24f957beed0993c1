"""The OpenAPI document shows each data-source body as a union on `type`, from the registry."""

from __future__ import annotations

from typing import Any

import pytest

from rivergen.app import create_app
from rivergen.connectors.registry import ENGINES
from rivergen.settings import Settings
from tests.fixtures.app import TEST_SECRET_KEY, Api

BODIES = {
    "create": ("/api/v1/data-sources", "post"),
    "test": ("/api/v1/data-sources/test", "post"),
    "update": ("/api/v1/data-sources/{data_source_id}", "patch"),
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = create_app(Settings(jwt_secret="x" * 32, secret_keys=TEST_SECRET_KEY))
    return app.openapi()


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    components: dict[str, dict[str, Any]] = document["components"]["schemas"]
    while "$ref" in schema:
        schema = components[str(schema["$ref"]).rsplit("/", 1)[1]]
    return schema


def tagged_union(document: dict[str, Any], which: str) -> dict[str, Any]:
    path, method = BODIES[which]
    body = document["paths"][path][method]["requestBody"]["content"]["application/json"]
    schema = resolve(document, body["schema"])
    if which == "update":
        # With `type`: the engine's variant; without: the stored engine stays.
        options: list[dict[str, Any]] = schema["anyOf"]
        tagged, same_engine = options
        assert "type" not in resolve(document, same_engine)["properties"]
        return tagged
    return schema


@pytest.mark.parametrize("which", list(BODIES))
def test_every_engine_name_selects_its_own_connection_schema(
    document: dict[str, Any], which: str
) -> None:
    union = tagged_union(document, which)
    assert union["discriminator"]["propertyName"] == "type"
    mapping = union["discriminator"]["mapping"]
    names = {name for spec in ENGINES.values() for name in (spec.key, *spec.aliases)}
    # Generated from the registry: every key and alias, nothing else.
    assert set(mapping) == names
    assert {"postgresql", "postgres", "pg"} <= set(mapping)
    for spec in ENGINES.values():
        for name in (spec.key, *spec.aliases):
            variant = resolve(document, {"$ref": mapping[name]})
            kind = variant["properties"]["type"]
            assert name in kind.get("enum", [kind.get("const")])
            assert variant["additionalProperties"] is False
            connection = variant["properties"]["connection"]
            refs = [connection] if "$ref" in connection else connection["anyOf"]
            model = resolve(document, next(r for r in refs if "$ref" in r))
            expected = set(spec.connection_model.model_fields)
            assert set(model["properties"]) == expected, name
            if which == "update":
                # A PATCH merges into the stored fields: nothing is required, nothing defaulted.
                assert "required" not in model
                assert all("default" not in p for p in model["properties"].values())
            else:
                assert "connection" in variant["required"]
                required = {
                    n for n, f in spec.connection_model.model_fields.items() if f.is_required()
                }
                assert set(model.get("required", [])) == required, name
                if not spec.file_based:
                    assert "host" in required  # `connection: {}` is documented as invalid
            tunnel = variant["properties"]["ssh_tunnel"]
            if spec.file_based:
                assert tunnel["type"] == "null", name  # file engines take no tunnel
            else:
                assert any("$ref" in option for option in tunnel["anyOf"]), name


@pytest.mark.anyio
async def test_type_is_taken_exactly_as_documented(api: Api) -> None:
    headers = await api.headers_for()
    body = {"name": "x", "connection": {"host": "127.0.0.1", "username": "u"}}
    for bad in ("PostgreSQL", " pg", "postgresql ", "db2"):  # db2: no such engine
        response = await api.client.post(
            "/api/v1/data-sources", json={**body, "type": bad}, headers=headers
        )
        assert response.status_code == 422, (bad, response.text)
        details = response.json()["error"]["details"]
        assert [(d["field"], d["type"]) for d in details] == [("body.type", "enum")]
    for name in ("postgresql", "postgres", "pg"):
        response = await api.client.post(
            "/api/v1/data-sources", json={**body, "name": name, "type": name}, headers=headers
        )
        assert response.status_code == 201, response.text
        assert response.json()["data"]["type"] == "postgresql"
    response = await api.client.post(
        "/api/v1/data-sources", json={"name": "y", "type": "pg", "connection": {}}, headers=headers
    )
    assert response.status_code == 422
    fields = {d["field"] for d in response.json()["error"]["details"]}
    assert fields == {"body.connection.host", "body.connection.username"}
