"""Imports every domain's models so that metadata and migrations see all tables."""

from rivergen.apitokens.models import ApiToken
from rivergen.audit.models import AuditEvent
from rivergen.datasources.models import DataSource
from rivergen.health.models import HealthRecord
from rivergen.identity.models import AuthSession, Membership, Organization, User
from rivergen.store.base import Base

__all__ = [
    "ApiToken",
    "AuditEvent",
    "AuthSession",
    "Base",
    "DataSource",
    "HealthRecord",
    "Membership",
    "Organization",
    "User",
]
