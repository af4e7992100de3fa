"""Short-lived signed access tokens (JWT, HS256 via PyJWT) and per-unit report codes."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

import jwt

from api.errors import AuthenticationError
from facility.clock import Clock

ISSUER = "facility-monitor"
_ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class Claims:
    username: str
    user_id: int
    role: str
    issued_ms: int
    expires_ms: int


class TokenSigner:
    def __init__(self, secret: str, *, ttl_s: int, clock_ms: Clock) -> None:
        self._key = hashlib.sha256(b"token:" + secret.encode()).digest()
        self.ttl_s = ttl_s
        self._clock_ms = clock_ms

    def issue(self, *, username: str, user_id: int, role: str) -> tuple[str, Claims]:
        now_s = self._clock_ms() // 1000
        claims = Claims(username, user_id, role, now_s * 1000, (now_s + self.ttl_s) * 1000)
        token = jwt.encode(
            {
                "sub": username,
                "uid": user_id,
                "role": role,
                "iat": now_s,
                "exp": now_s + self.ttl_s,
                "iss": ISSUER,
            },
            self._key,
            algorithm=_ALGORITHM,
        )
        return token, claims

    def decode(self, token: str) -> Claims:
        """The token's claims, or `AuthenticationError` saying what is wrong with it."""
        try:
            # Expiry is checked below against our clock (tests move it), not PyJWT's.
            raw = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                issuer=ISSUER,
                options={"require": ["sub", "uid", "exp", "iat", "iss"], "verify_exp": False},
            )
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(f"invalid token: {exc}") from exc
        try:
            claims = Claims(
                str(raw["sub"]),
                int(raw["uid"]),
                str(raw.get("role", "")),
                int(raw["iat"]) * 1000,
                int(raw["exp"]) * 1000,
            )
        except (TypeError, ValueError) as exc:
            raise AuthenticationError("invalid token: malformed claims") from exc
        if self._clock_ms() >= claims.expires_ms:
            raise AuthenticationError("the token has expired: log in again")
        return claims


class ReportCodes:
    """A code per unit for residents' reports (behind a QR code): an HMAC of site and unit.

    Codes are opaque (the unit is found by looking the code up) and stable while the secret
    stays the same.
    """

    def __init__(self, secret: str, site_id: str, unit_ids: list[str]) -> None:
        self._key = hashlib.sha256(b"report-code:" + secret.encode()).digest()
        self._site_id = site_id
        self._units = {self.code_for(u): u for u in unit_ids}

    def code_for(self, unit_id: str) -> str:
        mac = hmac.new(self._key, f"{self._site_id}/{unit_id}".encode(), hashlib.sha256)
        return base64.b32encode(mac.digest()[:10]).decode().lower()

    def unit_for(self, code: str) -> str | None:
        return self._units.get(code.strip().lower())
