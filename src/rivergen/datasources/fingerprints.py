"""Keyed fingerprints of stored secrets, so that a declarative client can tell a changed secret
from an unchanged one without ever reading it back.

A fingerprint is `hmac-sha256:` + the first 128 bits of HMAC-SHA256(key, organization id, data
source name, field, value). The key is derived from the newest key of RIVERGEN_SECRET_KEYS
(HKDF-SHA256 with the purpose "rivergen secret fingerprints v1"), so it lives and rotates with
the keys that protect the secrets themselves; `rivergen rotate-keys` recomputes the fingerprints
of the rows it re-encrypts. A plain hash would let anyone who reads a data source (viewers
included) test password guesses offline; under a server key nobody can compute one without
the server. The organization and name in the message keep equal passwords of two sources
from showing equal fingerprints.

The client compares by asking the server for the fingerprints of the values it holds
(`POST /data-sources/{id}/secret-fingerprints`, admin and up, who may set those secrets
anyway). That is an online guessing oracle for admins, so it is rate limited per caller.
"""

from __future__ import annotations

import hashlib
import hmac

from rivergen.core.errors import InvalidInput, RateLimited
from rivergen.datasources.config import SecretMap, resolve_spec
from rivergen.datasources.schemas import SecretCandidates
from rivergen.identity.caller import Caller
from rivergen.identity.models import Role
from rivergen.security.crypto import SecretBox
from rivergen.security.throttle import SlidingWindow

PURPOSE = b"rivergen secret fingerprints v1"
PREFIX = "hmac-sha256:"
TUNNEL_SECRETS = frozenset({"password", "private_key", "private_key_passphrase"})
# Candidate values a caller may have fingerprinted per minute: a few applies of a large file.
CANDIDATES_PER_MINUTE = 600


class Fingerprinter:
    """Computes the fingerprints of secrets under a key derived from the secret keys."""

    def __init__(self, box: SecretBox) -> None:
        self._key = box.derive_key(PURPOSE)

    def one(self, organization_id: int, name: str, field: str, value: str) -> str:
        """The fingerprint of one secret value, e.g. for field "connection.password"."""
        message = "\0".join((str(organization_id), name, field, value)).encode("utf-8")
        return PREFIX + hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]

    def of(self, organization_id: int, name: str, secrets: SecretMap) -> dict[str, str]:
        """The fingerprint of every set secret, by "part.field"."""
        return {
            f"{part}.{field}": self.one(organization_id, name, f"{part}.{field}", value)
            for part, values in secrets.items()
            for field, value in sorted(values.items())
            if value
        }


class FingerprintOracle:
    """Fingerprints of candidate values for one data source, rate limited per caller."""

    def __init__(self, fingerprinter: Fingerprinter, window: SlidingWindow) -> None:
        self._fingerprinter = fingerprinter
        self._window = window

    def candidates(
        self, caller: Caller, organization_id: int, name: str, type: str, body: SecretCandidates
    ) -> dict[str, str]:
        """The fingerprints `body`'s values would have as this source's secrets (admin+)."""
        caller.require(Role.ADMIN, organization_id)
        allowed = {
            "connection": set(resolve_spec(type).secret_fields),
            "ssh_tunnel": TUNNEL_SECRETS,
        }
        values = {"connection": body.connection, "ssh_tunnel": body.ssh_tunnel}
        problems = [
            {"field": f"{part}.{field}", "message": "not a secret field of this data source"}
            for part, fields in values.items()
            for field in fields
            if field not in allowed[part]
        ]
        if problems:
            raise InvalidInput("Only secret fields can be fingerprinted", details=problems)
        actor = f"token:{caller.token_id}" if caller.token_id else f"user:{caller.user.id}"
        for _ in range(sum(len(v) for v in values.values())):
            wait = self._window.hit(actor)
            if wait is not None:
                raise RateLimited(
                    "Too many fingerprint requests; try again later", retry_after=wait
                )
        return self._fingerprinter.of(organization_id, name, values)
