"""Signed links: tamper-proof, expiring, bound to their purpose and to the state they change."""

from app.accounts.links import link_signature_matches, make_link_token, read_link_token

SECRET = "s" * 40


def test_a_fresh_link_reads_back_its_claims():
    token = make_link_token(SECRET, 42, "verify", "ana@example.com|-", 3600)
    claims = read_link_token(token, "verify")
    assert claims is not None
    assert claims.user_id == 42
    assert link_signature_matches(SECRET, token, "ana@example.com|-")


def test_expired_links_and_other_purposes_are_refused():
    expired = make_link_token(SECRET, 42, "verify", "f", -1)
    assert read_link_token(expired, "verify") is None
    reset = make_link_token(SECRET, 42, "reset", "f", 3600)
    assert read_link_token(reset, "verify") is None


def test_a_changed_fingerprint_or_secret_or_payload_breaks_the_signature():
    token = make_link_token(SECRET, 42, "reset", "old-password-hash", 3600)
    assert not link_signature_matches(SECRET, token, "new-password-hash")
    assert not link_signature_matches("t" * 40, token, "old-password-hash")
    other = make_link_token(SECRET, 43, "reset", "old-password-hash", 3600)
    forged = other.split(".")[0] + "." + token.split(".")[1]
    assert not link_signature_matches(SECRET, forged, "old-password-hash")


def test_garbage_is_not_a_link():
    for garbage in ("", "abc", "a.b", "!!!.???", "eyJ1IjoxfQ.x"):
        assert read_link_token(garbage, "verify") is None
