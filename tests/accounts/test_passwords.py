"""Password hashing and the rules a new password must meet."""

import pytest
from argon2 import PasswordHasher
from argon2.low_level import Type

from app.accounts.passwords import (
    common_passwords,
    hash_password,
    password_problem,
    verify_password,
)


def test_hashes_are_argon2id_with_at_least_owasp_parameters():
    encoded = hash_password("a long and unusual passphrase")
    assert encoded.startswith("$argon2id$")
    params = dict(part.split("=") for part in encoded.split("$")[3].split(","))
    assert int(params["m"]) >= 19 * 1024
    assert int(params["t"]) >= 2
    assert int(params["p"]) >= 1


def test_verify_accepts_the_password_and_refuses_others():
    encoded = hash_password("a long and unusual passphrase")
    assert verify_password(encoded, "a long and unusual passphrase") == (True, False)
    assert verify_password(encoded, "a long and unusual passphrasE") == (False, False)
    assert verify_password("not a hash", "anything") == (False, False)


def test_a_hash_with_weaker_parameters_asks_for_a_rehash():
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1, type=Type.ID)
    encoded = weak.hash("a long and unusual passphrase")
    assert verify_password(encoded, "a long and unusual passphrase") == (True, True)


def test_the_common_password_list_ships_with_a_thousand_entries():
    passwords = common_passwords()
    assert len(passwords) == 1000
    assert {"123456", "password", "qwerty"} <= passwords


@pytest.mark.parametrize(
    ("password", "email", "message"),
    [
        ("short", "", "at least 8 characters"),
        ("x" * 129, "", "at most 128 characters"),
        ("password1", "", "most common"),
        ("PASSWORD", "", "most common"),
        ("ana@example.com", "Ana@Example.com", "must not be your email"),
    ],
)
def test_refused_passwords_say_why(password, email, message):
    problem = password_problem(password, email)
    assert problem is not None
    assert message in problem


def test_an_unusual_password_is_accepted():
    assert password_problem("correct horse battery staple", "ana@example.com") is None
    assert password_problem("x" * 128) is None
