"""Table keys from arbitrary strings.

PartitionKey and RowKey forbid `/`, `\\`, `#`, `?` and control characters and hold at most
1 KiB. Forbidden characters (and the escape character itself) become `*XX`-style hex escapes, so
escaping is reversible and distinct inputs stay distinct; a key still too long is cut and given
a SHA-256 suffix of the whole original key, after a `*~` marker that escaping never produces
(an escape is always `*` and two hex digits), so a short key cannot look like a cut one.
"""

from __future__ import annotations

import hashlib

ESCAPE = "*"
MAX_KEY_CHARS = 255


def _forbidden(ch: str) -> bool:
    code = ord(ch)
    return ch in "/\\#?" or ch == ESCAPE or code < 0x20 or 0x7F <= code <= 0x9F


def escape_key(key: str) -> str:
    escaped = "".join(f"{ESCAPE}{ord(ch):02x}" if _forbidden(ch) else ch for ch in key)
    if len(escaped) <= MAX_KEY_CHARS:
        return escaped
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    marker = ESCAPE + "~"
    return escaped[: MAX_KEY_CHARS - len(digest) - len(marker)] + marker + digest
