"""Password hashing (argon2id) and the rules a new password must meet."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 8
MAX_LENGTH = 128

# OWASP's minimum for argon2id: 19 MiB of memory, 2 iterations, 1 lane.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)

# The 1,000 most common passwords, most common first (the head of the list Django ships,
# which is Royce Williams' list of leaked passwords).
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")


@cache
def common_passwords() -> frozenset[str]:
    return frozenset(
        line.strip().lower() for line in COMMON_PASSWORDS_FILE.read_text().splitlines() if line
    )


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> tuple[bool, bool]:
    """(matches, needs_rehash): a stale hash is replaced at the next successful login."""
    try:
        HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, False
    return True, HASHER.check_needs_rehash(password_hash)


# A real hash of a random string: checking it costs what checking a real account costs,
# so a login for an unknown email takes as long as a wrong password.
_DUMMY_HASH = HASHER.hash("no account has this password: it only burns the same time")


def burn_verification_time(password: str) -> None:
    verify_password(_DUMMY_HASH, password)


def password_problem(password: str, email: str = "") -> str | None:
    """Why ``password`` is refused, in words, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    if password.lower() in common_passwords():
        return "This password is one of the most common ones. Choose something less guessable."
    if email and password.strip().lower() == email.strip().lower():
        return "Your password must not be your email address."
    return None
