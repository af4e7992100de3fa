"""facility/secret_text.py: generated secrets never start with `-`, so a command line reads
them as values (`--mqtt-password <secret>`), not as options."""

from __future__ import annotations

import re

from facility.secret_text import random_secret
from mqtt.identity.passwords import new_password


def test_no_secret_starts_with_a_dash() -> None:
    """One in 64 draws of token_urlsafe starts with `-`: 5,000 draws meet ~78 of them."""
    drawn = [random_secret(9) for _ in range(5000)] + [new_password() for _ in range(5000)]
    assert not [s for s in drawn if s.startswith("-")]
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]*", s) for s in drawn)
    assert {len(s) for s in drawn[:5000]} == {12}
    assert {len(s) for s in drawn[5000:]} == {32}
    assert any("-" in s for s in drawn)  # still the whole URL-safe alphabet inside
