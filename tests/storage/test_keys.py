"""Table keys: forbidden characters escaped reversibly, long keys cut and hashed, no collisions."""

from __future__ import annotations

import hashlib

from storage.keys import MAX_KEY_CHARS, escape_key


def test_forbidden_characters_are_escaped():
    assert escape_key("a/b\\c#d?e*f\x00g\x7fh") == "a*2fb*5cc*23d*3fe*2af*00g*7fh"
    assert escape_key("msteams/conversations/a:1") == "msteams*2fconversations*2fa:1"


def test_long_keys_are_cut_and_hashed():
    a = escape_key("x" * 300 + "a")
    b = escape_key("x" * 300 + "b")
    assert len(a) == len(b) == MAX_KEY_CHARS and a != b


def test_a_short_key_cannot_pose_as_a_cut_one():
    long_key = "y" * 400
    cut = escape_key(long_key)
    digest = hashlib.sha256(long_key.encode()).hexdigest()
    # The nearest a short key can get: the same prefix and digest after a plain escape.
    forged = cut[: MAX_KEY_CHARS - 66] + "*" + digest
    assert escape_key(forged) != cut
