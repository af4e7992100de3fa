"""Short-lived signed access tokens (JWT, HS256 via PyJWT) and per-unit report codes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import jwt

from api.errors import AuthenticationError
from facility.clock import Clock
from facility.site import local_id, site_of_id

ISSUER = "facility-monitor"
_ALGORITHM = "HS256"
_REQUIRED = ("sub", "uid", "ver", "sid", "auth_time", "exp", "iat", "iss")


@dataclass(frozen=True, slots=True)
class Claims:
    username: str
    user_id: int
    role: str
    issued_ms: int
    expires_ms: int
    version: int
    """The user's token version when issued: a bump (logout everywhere, password, role,
    buildings, disabled) makes every older token invalid."""
    session_id: str
    """One login's id, kept by refreshes: a logout revokes it (and so every token of it)."""
    auth_ms: int
    """When the session began (the login): it ends `session_max_s` later, refreshed or not."""


class TokenSigner:
    """Signs and checks access tokens. A token lives `ttl_s`, but never past its session's
    absolute end (`auth_ms + session_max_s`): a refresh cannot stretch a session forever."""

    def __init__(
        self, secret: str, *, ttl_s: int, clock_ms: Clock, session_max_s: int = 43_200
    ) -> None:
        self._key = hashlib.sha256(b"token:" + secret.encode()).digest()
        self.ttl_s = ttl_s
        self.session_max_s = session_max_s
        self._clock_ms = clock_ms

    def issue(
        self,
        *,
        username: str,
        user_id: int,
        role: str,
        version: int = 0,
        session_id: str | None = None,
        auth_ms: int | None = None,
    ) -> tuple[str, Claims]:
        """A token for a new session (a login), or for `session_id` begun at `auth_ms`
        (a refresh)."""
        now_s = self._clock_ms() // 1000
        auth_s = now_s if auth_ms is None else auth_ms // 1000
        if now_s >= auth_s + self.session_max_s:
            raise AuthenticationError("the session is over its lifetime: log in again")
        exp_s = min(now_s + self.ttl_s, auth_s + self.session_max_s)
        sid = session_id or secrets.token_hex(16)
        claims = Claims(
            username, user_id, role, now_s * 1000, exp_s * 1000, version, sid, auth_s * 1000
        )
        token = jwt.encode(
            {
                "sub": username,
                "uid": user_id,
                "role": role,
                "ver": version,
                "sid": sid,
                "auth_time": auth_s,
                "iat": now_s,
                "exp": exp_s,
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
                options={"require": [*_REQUIRED], "verify_exp": False},
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
                int(raw["ver"]),
                str(raw["sid"]),
                int(raw["auth_time"]) * 1000,
            )
        except (TypeError, ValueError) as exc:
            raise AuthenticationError("invalid token: malformed claims") from exc
        now = self._clock_ms()
        if now >= claims.expires_ms:
            raise AuthenticationError("the token has expired: log in again")
        if now >= claims.auth_ms + self.session_max_s * 1000 or len(claims.session_id) > 32:
            raise AuthenticationError("the session is over its lifetime: log in again")
        return claims


def signed_subject(site_id: str, ident: str) -> bytes:
    """What a unit's or building's public code signs: `site/id`, the id's own site for a
    scoped id (`riverside:b03` -> `riverside/b03`), else `site_id`."""
    return f"{site_of_id(ident) or site_id}/{local_id(ident)}".encode()


class ReportCodes:
    """A code per unit for residents' reports (behind a QR code): an HMAC of site and unit.

    Codes are opaque (the unit is found by looking the code up) and stable while their secret
    stays the same: `report_secret` when set, else the API secret (so rotating the API secret
    keeps printed codes only once `report_secret` holds the old value).

    A portfolio's scoped unit id (`riverside:b03-u1`) is signed as its own site and the id in
    that site (`riverside/b03-u1`): the very code the site had as a single-site deployment, so
    stickers printed before a move to a portfolio keep working, and one estate's `b03-u1`
    never has another's code.
    """

    def __init__(self, secret: str, site_id: str, unit_ids: list[str]) -> None:
        self._key = hashlib.sha256(b"report-code:" + secret.encode()).digest()
        self._site_id = site_id
        self._units = {self.code_for(u): u for u in unit_ids}

    def code_for(self, unit_id: str) -> str:
        mac = hmac.new(self._key, signed_subject(self._site_id, unit_id), hashlib.sha256)
        return base64.b32encode(mac.digest()[:10]).decode().lower()

    def unit_for(self, code: str) -> str | None:
        return self._units.get(code.strip().lower())
