"""The signed-in caller with their roles, as services see them."""

from __future__ import annotations

from dataclasses import dataclass

from rivergen.core.errors import Forbidden, NotFound
from rivergen.identity.models import Role, User


@dataclass(frozen=True)
class Caller:
    """A signed-in user with their roles and the organization list and create act on."""

    user: User
    roles: dict[int, Role]
    active_organization_id: int
    # Set when a service token signs the request in; `user` is then the token's creator.
    token_id: int | None = None

    @property
    def actor_user_id(self) -> int | None:
        """The person the audit log names: none when a service token acts."""
        return None if self.token_id is not None else self.user.id

    def role_in(self, organization_id: int) -> Role | None:
        """The caller's role in an organization, if any."""
        return self.roles.get(organization_id)

    def require(self, minimum: Role, organization_id: int | None = None) -> int:
        """Check the caller has at least `minimum` in the organization; return its id."""
        org_id = self.active_organization_id if organization_id is None else organization_id
        role = self.roles.get(org_id)
        if role is None:
            raise NotFound("Organization not found")
        if not role.at_least(minimum):
            raise Forbidden(f"This action requires the {minimum.value} role or higher")
        return org_id

    @property
    def organization_ids(self) -> list[int]:
        """Every organization the caller belongs to."""
        return list(self.roles)
