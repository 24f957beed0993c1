"""The body of a notification (fixed when its event happens) and its text for Slack and email."""

from __future__ import annotations

from datetime import datetime
from typing import Any

# Failures that another attempt will not fix: a person must change something.
USER_FIXABLE = frozenset(
    {"AUTHENTICATION_FAILED", "HOST_NOT_ALLOWED", "CONFIGURATION_ERROR", "SSH_HOST_KEY_MISMATCH"}
)

_HEADLINES = {
    "data_source.down": "is down",
    "data_source.recovered": "has recovered",
    "data_source.stale": "has not been checked on schedule (the monitor may be down)",
    "test": "test notification",
}


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def event_payload(
    *,
    event_id: str,
    event_type: str,
    occurred_at: datetime,
    organization: tuple[int, str],
    source: tuple[int, str, str] | None,
    status: str | None,
    error: tuple[str | None, str | None, str | None, str | None] = (None, None, None, None),
    consecutive_failures: int = 0,
    first_failure_at: datetime | None = None,
    last_success_at: datetime | None = None,
    rule: tuple[int, str] | None = None,
) -> dict[str, Any]:
    """The webhook body of the contract; `error` is (code, phase, message, hint)."""
    code, phase, message, hint = error
    return {
        "id": event_id,
        "type": event_type,
        "occurred_at": _when(occurred_at),
        "organization": {"id": organization[0], "name": organization[1]},
        "data_source": None
        if source is None
        else {"id": source[0], "name": source[1], "type": source[2]},
        "status": status,
        "error_code": code,
        "error_phase": phase,
        "error_message": message,
        "hint": hint,
        "user_action_required": code in USER_FIXABLE,
        "consecutive_failures": consecutive_failures,
        "first_failure_at": _when(first_failure_at),
        "last_success_at": _when(last_success_at),
        "rule": None if rule is None else {"id": rule[0], "name": rule[1]},
    }


def subject_line(payload: dict[str, Any]) -> str:
    """One line naming the source and what happened."""
    source = payload.get("data_source") or {}
    name = source.get("name") or payload["organization"]["name"]
    return f"[RiverGen] {name} {_HEADLINES.get(payload['type'], payload['type'])}"


def text_line(payload: dict[str, Any]) -> str:
    """The subject plus the error code, phase, message and hint when there is one."""
    parts = [subject_line(payload)]
    if payload.get("error_code"):
        parts.append(
            f"{payload['error_code']} in phase {payload.get('error_phase')}: "
            f"{payload.get('error_message')}"
        )
    if payload.get("hint"):
        parts.append(f"Hint: {payload['hint']}")
    if payload.get("user_action_required"):
        parts.append("Retrying will not fix this: the configuration must be changed.")
    return "\n".join(parts)


def slack_body(payload: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message: `text` (notifications, fallback) and `blocks`."""
    text = text_line(payload)
    fields = [
        {"type": "mrkdwn", "text": f"*{label}*\n{payload.get(key)}"}
        for label, key in (
            ("Status", "status"),
            ("Error code", "error_code"),
            ("Phase", "error_phase"),
            ("Consecutive failures", "consecutive_failures"),
        )
        if payload.get(key) is not None
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": subject_line(payload)[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": payload["id"]}]})
    return {"text": text, "blocks": blocks}
