"""Secret redaction applied to everything that leaves the harness (reports, logs)."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<pw>[^@/\s]+)@")
_BEARER = re.compile(r"(?i)\b(bearer|token)(\s*[:= ]\s*)([A-Za-z0-9._~+/=-]{8,})")
_KV_SECRET = re.compile(r"(?i)\b([A-Z_]*(PASSWORD|SECRET|TOKEN)[A-Z_]*=)(\S+)")


class Redactor:
    """Masks known secret values plus passwords in URLs and token-looking strings."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)

    def with_secrets(self, secrets: Iterable[str]) -> Redactor:
        return Redactor([*self._secrets, *secrets])

    def __call__(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, MASK)
        text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
        text = _BEARER.sub(lambda m: f"{m[1]}{m[2]}{MASK}", text)
        return _KV_SECRET.sub(lambda m: f"{m[1]}{MASK}", text)
