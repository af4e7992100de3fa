"""A code per building for its public status page, made like the units' report codes.

Building ids are short and guessable (`b03`); a status page open to anyone is reached by an
HMAC of the site and building instead, under the report-code secret with its own label (a
unit's report code and a building's status code never coincide). Nothing is stored: printing
the code again gives the same one while the secret stays the same. A portfolio's scoped
building id signs as its own site's (`api.auth.tokens.signed_subject`): codes survive the move.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

from api.auth.tokens import signed_subject


class StatusCodes:
    def __init__(self, secret: str, site_id: str, building_ids: Iterable[str]) -> None:
        self._key = hashlib.sha256(b"status-code:" + secret.encode()).digest()
        self._site_id = site_id
        self._buildings = {self.code_for(b): b for b in building_ids}

    def code_for(self, building_id: str) -> str:
        mac = hmac.new(self._key, signed_subject(self._site_id, building_id), hashlib.sha256)
        return base64.b32encode(mac.digest()[:10]).decode().lower()

    def building_for(self, code: str) -> str | None:
        return self._buildings.get(code.strip().lower())
