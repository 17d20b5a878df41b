"""Errors a person can fix: which field, what is wrong, in words."""

from __future__ import annotations

import re
from collections.abc import Mapping

# Deliberately simple: one @, no spaces, a dot in the domain. Deliverability is what the
# verification mail checks.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EMAIL_MAX = 254


class ValidationFailed(Exception):
    """Raised by services; controllers show ``errors`` beside the fields (HTML) or as
    ``{"errors": {...}}`` with status 422 (API)."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__(", ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = dict(errors)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def email_problem(email: str) -> str | None:
    email = email.strip()
    if not email:
        return "Enter an email address."
    if len(email) > EMAIL_MAX:
        return f"Use at most {EMAIL_MAX} characters."
    if not _EMAIL.match(email):
        return "Enter an email address like name@example.com."
    return None


def text_problem(value: str, label: str, *, max_length: int, required: bool = False) -> str | None:
    if required and not value.strip():
        return f"Enter {label}."
    if len(value) > max_length:
        return f"Use at most {max_length:,} characters."
    return None
