"""Secret redaction: what is masked, and that nothing else changes."""

from __future__ import annotations

import pytest

from harness.redact import MASK, Redactor


@pytest.mark.parametrize(("text", "expected"), [
    ("postgresql://app:s3cr3t@db:5432/app", f"postgresql://app:{MASK}@db:5432/app"),
    ("DATABASE_URL is postgres://rehearsal:p%40ss-word@127.0.0.1/x?sslmode=disable",
     f"DATABASE_URL is postgres://rehearsal:{MASK}@127.0.0.1/x?sslmode=disable"),
    ("two: http://a:one@h1/ and https://b:two@h2/", f"two: http://a:{MASK}@h1/ and https://b:{MASK}@h2/"),
])
def test_url_passwords(text: str, expected: str) -> None:
    assert Redactor()(text) == expected


def test_url_without_password_is_untouched() -> None:
    text = "http://user@example.com/path and https://example.com:8443/a:b"
    assert Redactor()(text) == text


def test_declared_secrets_anywhere() -> None:
    r = Redactor(["hunter22", "Zz9-long-secret"])
    assert r("pw hunter22, again:hunter22 / Zz9-long-secret.") == f"pw {MASK}, again:{MASK} / {MASK}."


def test_longest_secret_first() -> None:
    # If "abc" were masked first, "abcdef" would leave "***def" behind.
    for order in (["abc", "abcdef"], ["abcdef", "abc"]):
        assert Redactor(order)("x abcdef y abc z") == f"x {MASK} y {MASK} z"


def test_short_or_empty_secrets_are_ignored() -> None:
    """A one- or two-character "secret" would shred every message."""
    r = Redactor(["", "a", "ab"])
    assert r("a cab ab") == "a cab ab"


def test_with_secrets_adds_without_changing_the_original() -> None:
    base = Redactor(["first-secret"])
    more = base.with_secrets(["second-secret"])
    text = "first-secret second-secret"
    assert more(text) == f"{MASK} {MASK}"
    assert base(text) == f"{MASK} second-secret"


@pytest.mark.parametrize(("text", "expected"), [
    ("Authorization: Bearer eyJhbGciOi.JIUzI1-NiJ9", f"Authorization: Bearer {MASK}"),
    ("authorization: bearer abcdefgh12345678", f"authorization: bearer {MASK}"),
    ("token: ghp_abcdefgh1234", f"token: {MASK}"),
    ("--token=abcdefgh1234 --v=2", f"--token={MASK} --v=2"),
])
def test_bearer_and_token(text: str, expected: str) -> None:
    assert Redactor()(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("PGPASSWORD=hunter22 psql", f"PGPASSWORD={MASK} psql"),
    ("export DB_SECRET_KEY=abc", f"export DB_SECRET_KEY={MASK}"),
    ("GITHUB_TOKEN=x1 make", f"GITHUB_TOKEN={MASK} make"),
    ("password=lowercase-too", f"password={MASK}"),
    ("A=1 POSTGRES_PASSWORD=pw B=2", f"A=1 POSTGRES_PASSWORD={MASK} B=2"),
])
def test_key_value_secrets(text: str, expected: str) -> None:
    assert Redactor()(text) == expected


def test_nothing_else_is_altered() -> None:
    text = (
        "step 3 `kubectl -n rehearsal-demo rollout undo deployment/demo` exit 0\n"
        "  image rollback-rehearsal/demo-app:v1@sha256:0123456789abcdef\n"
        "USER=alice HOST=db PORT=5432 KEYBOARD=us PATH=/usr/bin:/bin\n"
        "tokens were rotated; see https://example.com/a?b=c#d, mail ops@example.com\n"
        "bearer of bad news; token: short\n"
        "ünïcödé ✓ 数据库\ttab\r\n"
    )
    assert Redactor(["not-in-text"])(text) == text


def test_idempotent_and_combined() -> None:
    r = Redactor(["hunter22"])
    text = "postgres://u:hunter22@db/x PGPASSWORD=hunter22 Bearer abcdefgh12345"
    once = r(text)
    assert "hunter22" not in once and "abcdefgh12345" not in once
    assert r(once) == once
