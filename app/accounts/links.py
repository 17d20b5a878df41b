"""Signed, expiring, single-use links for email verification and password reset.

A link carries the user id, its purpose and an expiry, signed with SECRET_KEY. It is
single-use without any stored state: the signature also covers a fingerprint of what
the link changes (the email and its verification time, or the password hash), so once
it has been used the fingerprint no longer matches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Literal

Purpose = Literal["verify", "reset"]


@dataclass(frozen=True)
class LinkClaims:
    user_id: int
    purpose: Purpose
    expires: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: str, payload: str, fingerprint: str) -> str:
    key = hashlib.sha256(f"links:{secret}".encode()).digest()
    return _b64(hmac.new(key, f"{payload}.{fingerprint}".encode(), hashlib.sha256).digest())


def make_link_token(
    secret: str, user_id: int, purpose: Purpose, fingerprint: str, ttl_seconds: int
) -> str:
    claims = {"u": user_id, "p": purpose, "e": int(time.time()) + ttl_seconds}
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{payload}.{_signature(secret, payload, fingerprint)}"


def read_link_token(token: str, purpose: Purpose) -> LinkClaims | None:
    """The claims of a well-formed, unexpired token of this purpose, not yet verified."""
    try:
        payload, _ = token.split(".", 1)
        claims = json.loads(_unb64(payload))
        parsed = LinkClaims(user_id=int(claims["u"]), purpose=claims["p"], expires=int(claims["e"]))
    except (ValueError, KeyError, TypeError):
        return None
    if parsed.purpose != purpose or parsed.expires < time.time():
        return None
    return parsed


def link_signature_matches(secret: str, token: str, fingerprint: str) -> bool:
    payload, _, signature = token.partition(".")
    return hmac.compare_digest(signature, _signature(secret, payload, fingerprint))
