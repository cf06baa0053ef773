"""Secret redaction applied to everything that leaves the harness (reports, logs).

Two layers, applied in this order:

1. *Registered secrets* (the database role's password, `secret: true` variables,
   `pass_env` values, passwords of DSNs the harness was given) are masked in every
   spelling a tool could print them in: plain; percent-encoded (`quote`,
   `quote_plus`, either hex case, even mixed with plain characters); JSON-, HTML- or
   shell-escaped; and base64 (standard and URL-safe alphabets, padded or not, alone
   or inside a longer blob at any of the three byte offsets, line-wrapped or not).
   One regular expression per secret matches all of these at once, and every match
   is found (also overlapping ones) before any is replaced, so two secrets that
   overlap in the text are both masked whole.
2. *Patterns* that need no registration: passwords in URLs and DSNs (also with `@`,
   `:` or `/` in the password), `KEY=value` and `key: value` forms whose key names a
   password, secret or token, `Bearer`/`token` values and `Authorization: Basic`.

Redact the whole text, then cut it (`Redactor.tail`, `redact_tail`): cutting first
leaves the part of a secret that survives the cut unrecognisable, hence visible.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from urllib.parse import unquote, urlsplit

MASK = "***"
# Shorter "secrets" would shred ordinary words (kept from the original rule).
MIN_SECRET_LEN = 3
# base64 forms only from this length: a secret's stable base64 part is about 4/3 of
# its length minus two characters, and a 2-4 letter fragment occurs in any text.
MIN_ENCODED_LEN = 6

Redact = Callable[[str], str]


# ───────────────────────────────────────────── one pattern per registered secret


def _utf8(text: str) -> bytes:
    """The bytes a tool would print: an environment value that was not UTF-8 comes back
    from os.environ with its bytes as lone surrogates (surrogateescape)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _ci_hex(value: int, width: int) -> str:
    """Hex digits matching either case (`%2f` and `%2F` are the same byte)."""
    return "".join(f"[{d.lower()}{d.upper()}]" if d.isalpha() else d for d in f"{value:0{width}X}")


def _json_unicode(ch: str) -> str:
    """`\\uXXXX` (a surrogate pair above the BMP), as JSON with ensure_ascii writes it."""
    code = ord(ch)
    if code < 0x10000:
        return r"\\u" + _ci_hex(code, 4)
    code -= 0x10000
    return r"\\u" + _ci_hex(0xD800 + (code >> 10), 4) + r"\\u" + _ci_hex(0xDC00 + (code & 0x3FF), 4)


# Escapes of single characters beyond the generic ones below, by character.
_SPECIAL_SPELLINGS: Mapping[str, tuple[str, ...]] = {
    " ": (r"\+",),                                   # quote_plus
    "'": (r"'\"'\"'", r"'\\''", "&apos;"),           # shlex.quote, the other shell idiom, XML
    '"': ("&quot;",),
    "&": ("&amp;",),
    "<": ("&lt;",),
    ">": ("&gt;",),
    "\n": (r"\\n",),
    "\t": (r"\\t",),
    "\r": (r"\\r",),
    "\b": (r"\\b",),
    "\f": (r"\\f",),
}


def _char_alternatives(ch: str) -> str:
    """A regex matching one character of a secret in any of the escaped spellings."""
    spellings = [re.escape(ch), "".join("%" + _ci_hex(b, 2) for b in _utf8(ch)),
                 _json_unicode(ch), f"&#0*{ord(ch)};", f"&#[xX]0*{_ci_hex(ord(ch), 1)};"]
    if not ch.isalnum():
        spellings.append(r"\\" + re.escape(ch))  # JSON `\"` `\\` `\/`, shell `\$` `\"` `\ `
    spellings += _SPECIAL_SPELLINGS.get(ch, ())
    return "(?:" + "|".join(spellings) + ")"


def _b64_fragments(raw: bytes) -> set[str]:
    """The base64 characters determined by `raw` alone, wherever it sits in a blob.

    A blob encodes 3 bytes per 4 characters, so the secret starts at byte offset 0, 1
    or 2 of a group; for each offset, encode it behind that many filler bytes and keep
    only the characters whose 6 bits all come from the secret. The secret on its own
    (padded or not) is added whole, so a value that *is* the secret leaves no tail.
    """
    out = {base64.b64encode(raw).decode(), base64.b64encode(raw).decode().rstrip("=")}
    for offset in range(3):
        enc = base64.b64encode(b"\0" * offset + raw).decode()
        first, end = -(-8 * offset // 6), 8 * (offset + len(raw)) // 6
        out.add(enc[first:end])
    return out | {f.translate(str.maketrans("+/", "-_")) for f in out}


def _b64_pattern(fragment: str) -> str:
    # Tools wrap base64 (base64(1) at 76 columns, PEM at 64, YAML block scalars with indent).
    return r"(?:\r?\n[ \t]*)?".join(re.escape(c) for c in fragment)


@lru_cache(maxsize=256)
def secret_pattern(secret: str) -> re.Pattern[str]:
    """Every spelling of `secret`, as a lookahead so that overlapping matches are all found."""
    spellings = ["".join(_char_alternatives(c) for c in secret)]
    if len(secret) >= MIN_ENCODED_LEN:
        # Base64 of the plain text and of its percent-encoded form (a DSN in a Secret's data).
        raws = {_utf8(secret), _percent_encoded(secret).encode("ascii")}
        fragments = set().union(*(_b64_fragments(r) for r in raws))
        spellings += [_b64_pattern(f) for f in sorted(fragments, key=len, reverse=True)]
    return re.compile("(?=(" + "|".join(spellings) + "))")


def _percent_encoded(secret: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "-._~") else
                   "".join(f"%{b:02X}" for b in _utf8(c)) for c in secret)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """`text` with every spelling of every secret replaced by MASK (overlaps merged)."""
    spans = [(m.start(1), m.end(1)) for s in secrets for m in secret_pattern(s).finditer(text) if m.end(1) > m.start(1)]
    if not spans:
        return text
    parts, pos = [], 0
    for start, end in _merge(spans):
        parts += [text[pos:start], MASK]
        pos = end
    return "".join(parts) + text[pos:]


# ──────────────────────────────────────────── patterns that need no registration

# A quoted value (kept quoted) or a bare one; the callers say where a bare one ends.
_QUOTED = r"""(?P<q>["'])(?P<quoted>(?:\\.|(?!(?P=q))[^\\\n])*)(?P=q)"""
_FALSY = r"(?:true|false|null|none|yes|no|on|off|~)(?![\w~-])"
# A scheme must start a word: otherwise every position of a long base64 run would
# rescan the run up to its end looking for "://" (quadratic).
_SCHEME = r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://"

_PATTERNS: tuple[re.Pattern[str], ...] = (
    # scheme://user:password@host — the password runs to the LAST `@` that is followed by
    # a host (so it may contain `@`, `:`, `/`); `host:5000/repo@sha256:…` is a port, not one.
    re.compile(rf"(?P<keep>{_SCHEME}[^:/\s\"'<>]+:)"
               r"(?!\d{1,5}(?:/|$))(?P<bare>[^\s\"']+)(?=@[^\s\"'<>@/?#]*(?:[/?#\s\"'<>]|$))"),
    # Authorization: Basic <base64 of user:password>
    re.compile(r"(?i)(?P<keep>\bauthorization[ \t]*[:=][ \t]*basic[ \t]+)(?P<bare>[A-Za-z0-9+/=]+)"),
    # Bearer tokens and `token <long value>` (the original rule: 8+ characters).
    re.compile(r"(?i)(?P<keep>\b(?:bearer|token)(?:\s*[:= ]\s*))(?P<bare>[A-Za-z0-9._~+/=-]{8,})"),
    # PGPASSWORD=…, DB_SECRET_KEY=…, --token=…, password = "two words" (key contains the word).
    re.compile(r"(?i)(?P<keep>\b[\w.-]*(?:password|passwd|secret|token)[\w.-]*(?:=|[ \t]+=[ \t]+))(?!=)"
               rf"(?:{_QUOTED}|(?P<bare>\S+))"),
    # password: value, "db.password": "value", POSTGRES_PASSWORD: value (key ends with the word;
    # a bare value runs to the end of the line, as in YAML). `secret: true` is not a secret.
    re.compile(r"(?im)(?P<keep>(?<![\w.-])(?P<kq>[\"']?)[\w.-]*(?:password|passwd|secret)(?P=kq)[ \t]*:[ \t]*)"
               rf"(?!{_FALSY})(?:{_QUOTED}|(?P<bare>[^\s\"'][^\r\n]*))"),
    # "access_token": "…", api_token: … (key ends with token; 8+ characters, as above).
    re.compile(r"(?i)(?P<keep>(?<![\w.-])(?P<kq>[\"']?)[\w.-]*token(?P=kq)[ \t]*:[ \t]*)"
               r"""(?:(?P<q>["'])(?P<quoted>[^"'\s]{8,})(?P=q)|(?P<bare>[A-Za-z0-9._~+/=-]{8,}))"""),
)


def _masked(m: re.Match[str]) -> str:
    quote = m.groupdict().get("q")
    if quote and m.group("quoted"):
        return f"{m['keep']}{quote}{MASK}{quote}"
    if quote:  # an empty quoted value hides nothing
        return m.group(0)
    return f"{m['keep']}{MASK}"


def mask_patterns(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(_masked, text)
    return text


# ─────────────────────────────────────────────────────────────────── the API


def dsn_password(dsn: str) -> str:
    """The password of a URL-style DSN, decoded ("" without one), to register as a secret."""
    try:
        return unquote(urlsplit(dsn).password or "")
    except ValueError:  # not a URL (e.g. a libpq `key=value` string): the patterns cover it
        return ""


class Redactor:
    """Masks registered secret values (in every spelling) plus the default patterns."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = tuple(sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LEN}))

    @property
    def secrets(self) -> tuple[str, ...]:
        return self._secrets

    def with_secrets(self, secrets: Iterable[str]) -> Redactor:
        """A new redactor that also masks `secrets` (this one is unchanged)."""
        return Redactor([*self._secrets, *secrets])

    def with_env(self, names: Iterable[str], environ: Mapping[str, str]) -> Redactor:
        """Also masks the values `names` have in `environ` (a scenario's `pass_env`)."""
        return self.with_secrets(environ[n] for n in names if n in environ)

    def with_dsns(self, dsns: Iterable[str]) -> Redactor:
        """Also masks the passwords of these DSNs (wherever else they may be printed)."""
        return self.with_secrets(dsn_password(d) for d in dsns)

    def __call__(self, text: str) -> str:
        return mask_patterns(mask_secrets(text, self._secrets))

    def tail(self, text: str, limit: int) -> str:
        """The last `limit` characters of the redacted text (redacted first, then cut)."""
        return redact_tail(self, text, limit)

    def head(self, text: str, limit: int) -> str:
        """The first `limit` characters of the redacted text (redacted first, then cut)."""
        return redact_head(self, text, limit)


def redact_tail(redact: Redact, text: str, limit: int) -> str:
    """`redact(text)[-limit:]` — never `redact(text[-limit:])`, which leaks a cut secret."""
    return redact(text)[-limit:] if limit > 0 else ""


def redact_head(redact: Redact, text: str, limit: int) -> str:
    """`redact(text)[:limit]` — never `redact(text[:limit])`."""
    return redact(text)[:max(limit, 0)]
