"""Declarative data sources: compare a file with the server and make the server match it.

The file is keyed by name. Connection and tunnel fields a source leaves out keep their stored
value (as in a PATCH); a `description`, `health_check_interval_seconds` or `ssh_tunnel` left out
means none. Secrets are compared by fingerprint (the server's
keyed HMAC, datasources/fingerprints.py): their values are only ever sent to the server, never
printed or written anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from rivergen.remote.files import ConfigFileError, expand, read_document

if TYPE_CHECKING:
    from rivergen.client import Client
    from rivergen.datasources.schemas import DataSourceOut, EngineOut

FIELDS = frozenset(
    {"name", "type", "description", "connection", "ssh_tunnel", "health_check_interval_seconds"}
)
TUNNEL_SECRETS = frozenset({"password", "private_key", "private_key_passphrase"})
MASK = "********"
Action = Literal["create", "update", "delete", "unchanged", "keep"]


@dataclass
class Change:
    """What apply would do to one data source; `body` may hold secrets and is never shown."""

    action: Action
    name: str
    data_source_id: int | None = None
    fields: list[str] = field(default_factory=list)
    body: dict[str, Any] | None = field(default=None, repr=False)

    def shown(self) -> dict[str, Any]:
        """The change as printed: no values at all."""
        return {
            "action": self.action,
            "name": self.name,
            "id": self.data_source_id,
            "fields": self.fields,
        }


def load(path: str) -> list[dict[str, Any]]:
    """The data sources of a file (`sources: [...]`), with `${VAR}` read from the environment."""
    document = read_document(path)
    if not isinstance(document, dict) or set(document) != {"sources"}:
        raise ConfigFileError(f"{path}: expected one key, sources: a list of data sources")
    items = document["sources"] or []
    if not isinstance(items, list):
        raise ConfigFileError(f"{path}: sources must be a list")
    seen: set[str] = set()
    out = []
    for position, item in enumerate(items):
        where = f"sources[{position}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ConfigFileError(f"{where}: each data source needs a name")
        if not isinstance(item.get("type"), str) or not isinstance(item.get("connection"), dict):
            raise ConfigFileError(f"{where} ({item['name']}): type and connection are required")
        unknown = sorted(set(item) - FIELDS)
        if unknown:
            raise ConfigFileError(f"{where} ({item['name']}): unknown fields {', '.join(unknown)}")
        if item["name"] in seen:
            raise ConfigFileError(f"{where}: the name {item['name']!r} appears twice")
        seen.add(item["name"])
        out.append(expand(item, item["name"]))
    return out


class Planner:
    """Compares desired data sources with the organization's, asking the server only."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._engines: dict[str, EngineOut] = {}
        for engine in client.engine_types():
            for key in (engine.type, *engine.aliases):
                self._engines[key] = engine

    def plan(self, desired: list[dict[str, Any]], prune: bool) -> list[Change]:
        """Every change apply would make (deletions only with `prune`)."""
        existing = {s.name: s for s in self._client.list_sources()}
        changes = [self._compare(item, existing.get(item["name"])) for item in desired]
        wanted = {item["name"] for item in desired}
        for name, source in sorted(existing.items()):
            if name not in wanted:
                changes.append(Change("delete" if prune else "keep", name, source.id))
        return changes

    def _secret_fields(self, engine_type: str) -> set[str]:
        engine = self._engines.get(engine_type)
        return {f.name for f in engine.fields if f.secret} if engine else {"password"}

    def _compare(self, item: dict[str, Any], source: DataSourceOut | None) -> Change:
        if source is None:
            return Change("create", item["name"], fields=["(new)"], body=dict(item))
        engine = self._engines.get(item["type"])
        engine_type = engine.type if engine else item["type"]
        changed: list[str] = []
        if engine_type != source.type:
            changed.append("type")
        for name in ("description", "health_check_interval_seconds"):
            if item.get(name) != getattr(source, name):
                changed.append(name)
        candidates: dict[str, dict[str, str]] = {"connection": {}, "ssh_tunnel": {}}
        changed += _compare_part(
            "connection",
            item["connection"],
            source.connection,
            self._secret_fields(engine_type),
            candidates["connection"],
        )
        tunnel = item.get("ssh_tunnel")
        if (tunnel is None) != (source.ssh_tunnel is None):
            changed.append("ssh_tunnel")
        elif tunnel is not None and source.ssh_tunnel is not None:
            changed += _compare_part(
                "ssh_tunnel",
                tunnel,
                source.ssh_tunnel,
                set(TUNNEL_SECRETS),
                candidates["ssh_tunnel"],
            )
        if any(candidates.values()):
            fingerprints = self._client.secret_fingerprints(
                source.id, candidates["connection"], candidates["ssh_tunnel"]
            )
            changed += [
                f"{key} (secret)"
                for key, value in sorted(fingerprints.items())
                if source.secret_fingerprints.get(key) != value
            ]
        if not changed:
            return Change("unchanged", item["name"], source.id)
        return Change("update", item["name"], source.id, changed, _patch(item, changed))


def _compare_part(
    part: str,
    desired: dict[str, Any],
    stored: dict[str, Any],
    secrets: set[str],
    candidates: dict[str, str],
) -> list[str]:
    """Changed plain fields of one part; set secrets go to `candidates` for fingerprinting."""
    changed = []
    for key, value in desired.items():
        if key in secrets:
            if value is None or value == "":
                if stored.get(key) == MASK:
                    changed.append(f"{part}.{key} (secret removed)")
            else:
                candidates[key] = str(value)
        elif stored.get(key) != value:
            changed.append(f"{part}.{key}")
    return changed


def _patch(item: dict[str, Any], changed: list[str]) -> dict[str, Any]:
    """The PATCH body of an update: whole parts, so that secrets go with a new destination."""
    body: dict[str, Any] = {}
    for name in ("type", "description", "health_check_interval_seconds"):
        if name in changed:
            body[name] = item.get(name)
    if "type" in changed or any(c.startswith("connection.") for c in changed):
        body["connection"] = item["connection"]
    if any(c.startswith("ssh_tunnel") for c in changed):
        body["ssh_tunnel"] = item.get("ssh_tunnel")
    return body


def summary(changes: list[Change]) -> str:
    """One line counting the changes."""
    count = {a: sum(1 for c in changes if c.action == a) for a in ("create", "update", "delete")}
    unchanged = sum(1 for c in changes if c.action == "unchanged")
    kept = sum(1 for c in changes if c.action == "keep")
    line = (
        f"{count['create']} to create, {count['update']} to change, {count['delete']} to delete,"
        f" {unchanged} unchanged"
    )
    return line + (f", {kept} not in the file (kept; --prune deletes them)" if kept else "")
