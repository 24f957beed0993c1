"""Imports every domain's models so that metadata and migrations see all tables."""

from rivergen.alerts.models import (
    AlertEvent,
    AlertRule,
    AlertState,
    NotificationChannel,
    NotificationDelivery,
    SourceMute,
)
from rivergen.apitokens.models import ApiToken
from rivergen.audit.models import AuditEvent
from rivergen.datasources.models import DataSource
from rivergen.health.models import HealthRecord
from rivergen.identity.models import AuthSession, Membership, Organization, User
from rivergen.organizations.models import Invitation
from rivergen.security.models import RateCounter
from rivergen.store.base import Base

__all__ = [
    "AlertEvent",
    "AlertRule",
    "AlertState",
    "ApiToken",
    "AuditEvent",
    "AuthSession",
    "Base",
    "DataSource",
    "HealthRecord",
    "Invitation",
    "Membership",
    "NotificationChannel",
    "NotificationDelivery",
    "Organization",
    "RateCounter",
    "SourceMute",
    "User",
]
