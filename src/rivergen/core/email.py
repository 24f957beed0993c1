"""Email addresses as a self-hosted installation sees them: any syntactically valid address.

email-validator refuses the special-use domains of RFC 6761/6762 (`.local`, `.test`,
`.localhost`, ...) because such addresses cannot be delivered on the public Internet. Inside an
organization's own network they are ordinary (the bootstrap owner's default is
`admin@rivergen.local`), and the service never sends mail to them nor looks their domain up, so
only the syntax is checked: no DNS query (`check_deliverability=False`) and no reserved-name
list. The library has no per-call switch for that list; it documents its module constants as
settable by its users, and clearing it here is what every email field of this service wants
(pydantic's `EmailStr` reads the same list).
"""

from __future__ import annotations

from typing import Annotated

import email_validator
from pydantic import AfterValidator, Field

email_validator.SPECIAL_USE_DOMAIN_NAMES.clear()

MAX_EMAIL_LENGTH = 320


def normalize_email(value: str) -> str:
    """The normalized address, lower-cased; ValueError naming the reason when it is not one."""
    try:
        result = email_validator.validate_email(value, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        raise ValueError(f"value is not a valid email address: {exc}") from None
    normalized = result.normalized.lower()
    if len(normalized) > MAX_EMAIL_LENGTH:
        raise ValueError(f"value is not a valid email address: longer than {MAX_EMAIL_LENGTH}")
    return normalized


Email = Annotated[
    str,
    Field(max_length=MAX_EMAIL_LENGTH, json_schema_extra={"format": "email"}),
    AfterValidator(normalize_email),
]
