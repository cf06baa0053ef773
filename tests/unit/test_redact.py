"""Secret redaction: what is masked, and that nothing else changes."""

from __future__ import annotations

import base64
import html
import json
import re
import shlex
import textwrap
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.redact import MASK, Redactor, redact_tail


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


# ───────────────────────────────────────────── every spelling of a registered secret

SECRET = "Pa55-w0rd@db:x/y"   # a registered secret with URL-, JSON- and shell-special characters


def _b64_blob(prefix: bytes, secret: str = SECRET) -> str:
    """`kubectl get secret -o yaml`: the secret inside a longer value, base64-encoded."""
    return base64.b64encode(prefix + secret.encode() + b"?sslmode=disable").decode()


def _b64_fragment(secret: str, offset: int) -> str:
    """The base64 characters that come from the secret alone, at a byte offset in its 3-byte group."""
    enc = base64.b64encode(b"\0" * offset + secret.encode()).decode()
    return enc[-(-8 * offset // 6):8 * (offset + len(secret.encode())) // 6]


LOWER_HEX = re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), quote(SECRET, safe=""))
PLANTED = {
    "plain": (f"pw {SECRET} end", [SECRET]),
    "base64 alone": (f"DATABASE_URL: {base64.b64encode(SECRET.encode()).decode()}",
                     [base64.b64encode(SECRET.encode()).decode().rstrip("=")]),
    **{f"base64 at offset {n}": (f"data:\n  DATABASE_URL: {_b64_blob(b'postgres://u:'[:11 + n])}\nkind: Secret",
                                 [_b64_fragment(SECRET, (11 + n) % 3)]) for n in range(3)},
    "base64 url-safe": (base64.urlsafe_b64encode(b"xx" + SECRET.encode() + b"!!").decode(),
                        [_b64_fragment(SECRET, 2).translate(str.maketrans("+/", "-_"))]),
    "base64 wrapped at 8": ("\n".join(textwrap.wrap(_b64_blob(b"abc"), 8)), [_b64_fragment(SECRET, 0)]),
    "url quote": (f"?p={quote(SECRET, safe='')}&x=1", [quote(SECRET, safe="")]),
    "url quote keeps /": (f"?p={quote(SECRET)}", [quote(SECRET)]),
    "url quote_plus": (f"?p={quote_plus(SECRET + ' z')}", [quote_plus(SECRET)]),
    "url lower-case hex": (f"?p={LOWER_HEX}", [LOWER_HEX]),
    "json": (json.dumps({"pw": SECRET + '"\\'}), [json.dumps(SECRET)[1:-1]]),
    "json ascii": (json.dumps({"pw": SECRET + "é"}), [json.dumps(SECRET)[1:-1]]),
    "shell": (f"psql -c {shlex.quote(SECRET + chr(39))}", [shlex.quote(SECRET + "'")[1:-1]]),
    "html": (f"<td>{html.escape(SECRET)}</td>", [html.escape(SECRET)]),
}


@pytest.mark.parametrize("form", PLANTED)
def test_registered_secret_in_every_spelling(form: str) -> None:
    text, spellings = PLANTED[form]
    out = Redactor([SECRET])(text)
    assert MASK in out
    assert [s for s in spellings if s in out] == []
    assert SECRET not in out


def test_base64_forms_need_a_long_enough_secret() -> None:
    """A short secret's base64 fragment is 2-5 letters: it would match ordinary words."""
    short = "abc12"
    fragment = _b64_fragment(short, 1)
    assert Redactor([short])(f"{short} {fragment}") == f"{MASK} {fragment}"


def test_overlapping_secrets_are_both_masked_whole() -> None:
    r = Redactor(["xabc-1234", "1234-yzq"])
    assert r("..xabc-1234-yzq..") == f"..{MASK}.."
    assert r("abab12abab12abab") == "abab12abab12abab"
    assert Redactor(["abab12abab"])("abab12abab12abab") == MASK


@pytest.mark.parametrize(("text", "expected"), [
    ("postgres://app:p@ss@db:5432/x", f"postgres://app:{MASK}@db:5432/x"),
    ("postgres://app:a:b/c@d@db/x?sslmode=disable", f"postgres://app:{MASK}@db/x?sslmode=disable"),
    ("'postgresql://u:pw@h' and 'x@y'", f"'postgresql://u:{MASK}@h' and 'x@y'"),
    ("mysql://admin@corp:s3cret@db", f"mysql://admin@corp:{MASK}@db"),
    ("skopeo copy docker://localhost:5000/demo@sha256:abc x", "skopeo copy docker://localhost:5000/demo@sha256:abc x"),
])
def test_dsn_passwords_with_special_characters(text: str, expected: str) -> None:
    assert Redactor()(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("password: correct horse", f"password: {MASK}"),
    ('{"password": "two words", "user": "bob"}', f'{{"password": "{MASK}", "user": "bob"}}'),
    ("  POSTGRES_PASSWORD: hunter22\n  USER: x", f"  POSTGRES_PASSWORD: {MASK}\n  USER: x"),
    ("client_secret: abcdef", f"client_secret: {MASK}"),
    ('PASSWORD="two words" next', f'PASSWORD="{MASK}" next'),
    ("db.password = swordfish", f"db.password = {MASK}"),
    ('"access_token": "ya29.a0AfH6SMB"', f'"access_token": "{MASK}"'),
    ("Authorization: Basic dXNlcjpwYXNz", f"Authorization: Basic {MASK}"),
])
def test_key_value_forms(text: str, expected: str) -> None:
    assert Redactor()(text) == expected


@pytest.mark.parametrize("text", [
    "secret: true", "  secretName: rehearsal-db", "kind: Secret", "automountServiceAccountToken: false",
    "secretKeyRef:\n  name: rehearsal-db", '{"secret": false}', "password:", 'password: ""',
    "if password == expected", "the base64 alphabet: ABCDEFGHabcdefgh0123+/",
])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert Redactor(["hunter22-long"])(text) == text


def test_redact_then_cut() -> None:
    """A secret cut by the truncation is still masked: the redactor saw it whole."""
    secret = "tail-cut-secret-0123456789"
    text = "x" * 100 + secret + "y" * 50
    r = Redactor([secret])
    cut = len(secret) // 2 + 50
    assert r.tail(text, cut) == ("x" * 100 + MASK + "y" * 50)[-cut:]
    assert secret[len(secret) // 2:] in r(text[-cut:])  # what cutting first would have leaked
    assert r.head(text, 110) == ("x" * 100 + MASK + "y" * 50)[:110]
    assert redact_tail(r, text, 0) == "" and r.tail("", 5) == ""


def test_pass_env_values_and_dsn_passwords() -> None:
    environ = {"DEPLOY_TOKEN": "dt-0123456789", "HOME": "/root", "EMPTY": ""}
    r = Redactor().with_env(["DEPLOY_TOKEN", "EMPTY", "MISSING"], environ)
    assert r.secrets == ("dt-0123456789",)
    r = r.with_dsns(["postgresql://rehearsal:a%40b%2Fc-longer@127.0.0.1:5432/postgres", "not a dsn", "x://[bad"])
    assert set(r.secrets) == {"dt-0123456789", "a@b/c-longer"}
    assert r("curl -H dt-0123456789 then a@b/c-longer") == f"curl -H {MASK} then {MASK}"


def test_non_utf8_environment_values_are_registered() -> None:
    value = b"caf\xe9-secret".decode("utf-8", "surrogateescape")  # how os.environ spells non-UTF-8 bytes
    r = Redactor([value])
    assert r(f"x {value} y") == f"x {MASK} y"
    assert r("x caf%E9-secret y") == f"x {MASK} y"


def test_long_text_stays_fast() -> None:
    """Linear in the text: a megabyte of base64 (no scheme, many word starts) is redacted in well under a second."""
    blob = base64.b64encode(bytes(range(256)) * 3000).decode()
    out = Redactor(["hunter22-long", "another-one-9"])(blob)
    assert out == blob


# ─────────────────────────────────────────────── property: no spelling survives

SECRETS = st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs"), exclude_characters="*"),
                  min_size=6, max_size=30)
TEXT = st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs", "Cc")), max_size=60)


def _spellings(secret: str) -> list[str]:
    return [secret, quote(secret), quote(secret, safe=""), quote_plus(secret),
            json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]]


@settings(max_examples=150, derandomize=True, deadline=None)
@given(secret=SECRETS, before=TEXT, after=TEXT, blob_prefix=st.binary(max_size=7), spelling=st.integers(0, 5))
def test_no_spelling_of_a_random_secret_survives(secret: str, before: str, after: str, blob_prefix: bytes,
                                                 spelling: int) -> None:
    r = Redactor([secret])
    planted = _spellings(secret)[spelling]
    assert secret not in r(before + secret + after)
    out = r(before + planted + after)
    assert planted not in out and secret not in out
    raw = secret.encode()
    blob = base64.b64encode(blob_prefix + raw + after.encode()).decode()
    fragment = _b64_fragment(secret, len(blob_prefix) % 3)
    assert fragment not in r(f"{before} {blob} {after}")
    assert fragment.translate(str.maketrans("+/", "-_")) not in r(blob.translate(str.maketrans("+/", "-_")))


@pytest.mark.parametrize(("text", "expected"), [
    ("`secret: true` variables", "`secret: true` variables"),
    ("{value: x, secret: off}", "{value: x, secret: off}"),
    ("`postgresql://u:<password>@127.0.0.1/db`", f"`postgresql://u:{MASK}@127.0.0.1/db`"),
])
def test_yaml_booleans_and_placeholders(text: str, expected: str) -> None:
    assert Redactor()(text) == expected
