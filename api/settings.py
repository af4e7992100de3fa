"""Typed settings of the API, built in `main()` / `create_app()`; bad values fail at start-up."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from api.http.clients import parse_networks
from facility.errors import SettingsError

log = logging.getLogger(__name__)

MIN_SECRET_CHARS = 32
DAY_S = 86_400
MAX_PHOTO_BYTES = 50 * 1024 * 1024


def _random_secret() -> str:
    return secrets.token_urlsafe(48)


@dataclass(frozen=True, slots=True)
class ApiSettings:
    secret: str = field(default_factory=_random_secret, repr=False)
    """Signs tokens (and report codes, unless report_secret is set). Random by default: set it
    (the same on every replica) for tokens and printed report codes to survive a restart."""
    report_secret: str | None = field(default=None, repr=False)
    """Signs the units' report codes (printed as QR codes). None: the API secret, as before;
    set it to the current API secret before rotating that, and printed codes keep working."""
    token_ttl_s: int = 900
    """Lifetime of an access token (refreshed by the dashboard while in use)."""
    session_max_s: int = 43_200
    """Absolute lifetime of a session: refreshing never takes a token past this long after
    its login (then log in again)."""
    token_in_query: bool = False
    """Accept the token as ?access_token= on /api/v1/events, for EventSource clients without
    the cookie. Off by default: URLs end up in logs and histories (they are masked in the
    access log either way)."""
    cookie_secure: bool = False
    """Send the token cookie only over HTTPS. It is anyway when the request came over HTTPS
    (directly, or from a trusted proxy saying so in X-Forwarded-Proto)."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks (CIDR) of the reverse proxies in front of the API: only from them
    are X-Forwarded-For / X-Forwarded-Proto believed (the client is then the right-most
    address of X-Forwarded-For that is not a trusted proxy). None by default: the peer is
    the client."""
    max_body_bytes: int = 64 * 1024
    """Largest request body; a larger one is refused with 413 before it is read (the user
    admin route allows at least 256 KiB)."""
    max_json_depth: int = 32
    """Deepest nesting of objects and arrays a JSON body may have (deeper: 422)."""
    login_backoff_after: int = 5
    """Failed logins one client address may make on one account before its next try has to
    wait ..."""
    login_backoff_s: float = 1.0
    """... this long, doubling with each further failure ..."""
    login_backoff_max_s: float = 300.0
    """... up to this long. Other addresses log in to the account as usual."""
    login_backoff_reset_s: float = 3600.0
    """A client's failed logins on an account are forgotten this long after its last one (a
    success or an admin's unlock forgets them at once)."""
    login_attempts_per_client: int = 20
    """Login attempts one client address may make per window ..."""
    login_window_s: float = 60.0
    """... of this length."""
    reports_per_client: int = 5
    """Residents' reports one client address may send per window ..."""
    reports_per_code: int = 5
    """Reports one unit's report code may file per window (however many clients send it)."""
    report_window_s: float = 600.0
    """... of this length (both report limits)."""
    report_photo_max_bytes: int = 5 * 1024 * 1024
    """Largest photo a resident may attach to a report (JPEG, PNG or WebP, checked by its
    bytes); a larger one is refused with 413."""
    public_url: str | None = None
    """The address residents reach this server at (`https://estate.example.com`), for the
    links in the units' QR codes and the buildings' status pages. None: the address the
    request that asked for a code came in on."""
    sse_keepalive_s: float = 15.0
    """A comment is sent on idle live-update streams this often (proxies close silent ones)."""
    status_interval_s: float = 1.0
    """How often the change monitor re-evaluates statuses and reads new work-order events."""
    live_events_keep: int = 1000
    """Live-update events kept in the database for reconnecting clients (any replica) ..."""
    live_events_keep_s: float = 3600.0
    """... and for at most this long; a client that missed more is told to reload (reset)."""
    live_lease_s: float = 5.0
    """One API process at a time writes the live-updates feed, under a lease of this length:
    when it stops without handing it back, another takes over after this long."""
    history_max_range_s: int = 31 * DAY_S
    """Longest time range one chart query may ask for."""
    service_max_range_s: int = 366 * DAY_S
    """Longest period of one service report."""
    worker_threads: int = 8
    """Threads for blocking handlers (database reads and writes)."""
    photo_threads: int = 2
    """Threads that decode residents' photos (0.1-0.3 s and a photo's pixels each), apart from
    the worker threads: a burst of photos waits for these, and database reads go on."""
    inline_reads: bool | None = None
    """Run the bounded reads of the hot polling routes (one building's status, one page of
    work orders) on the event loop instead of a worker thread. None: when the database is
    SQLite (a local file answers in well under a millisecond, and a thread hop costs more,
    queueing for the GIL); PostgreSQL reads go to the worker threads."""
    user_cache_s: float = 5.0
    """A user's record (role, team, buildings) is re-read from the database at least this
    often. Whether a token's session is still on is read on every request regardless."""

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_SECRET_CHARS:
            raise SettingsError("api-secret", f"must be at least {MIN_SECRET_CHARS} characters")
        if self.report_secret is not None and len(self.report_secret) < MIN_SECRET_CHARS:
            raise SettingsError(
                "api-report-secret", f"must be at least {MIN_SECRET_CHARS} characters"
            )
        for name in (
            "token_ttl_s",
            "session_max_s",
            "login_backoff_after",
            "login_attempts_per_client",
            "reports_per_client",
            "reports_per_code",
            "history_max_range_s",
            "service_max_range_s",
            "worker_threads",
            "photo_threads",
            "max_json_depth",
            "live_events_keep",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(name, "must be at least 1")
        for name in (
            "login_window_s",
            "report_window_s",
            "sse_keepalive_s",
            "status_interval_s",
            "login_backoff_s",
            "login_backoff_reset_s",
            "live_events_keep_s",
        ):
            if getattr(self, name) <= 0:
                raise SettingsError(name, "must be more than 0")
        if self.login_backoff_max_s < self.login_backoff_s:
            raise SettingsError("login_backoff_max_s", "must be at least login_backoff_s")
        if self.live_lease_s < 2 * self.status_interval_s:
            raise SettingsError("live_lease_s", "must be at least twice status_interval_s")
        if self.user_cache_s < 0:
            raise SettingsError("user_cache_s", "must not be negative")
        if self.max_body_bytes < 1024:
            raise SettingsError("max_body_bytes", "must be at least 1024")
        if not 1024 <= self.report_photo_max_bytes <= MAX_PHOTO_BYTES:
            raise SettingsError(
                "report_photo_max_bytes", f"must be from 1024 to {MAX_PHOTO_BYTES} bytes"
            )
        if self.public_url is not None:
            check_public_url(self.public_url)
        parse_networks(self.trusted_proxies, "trusted_proxies")


def check_public_url(url: str) -> None:
    """An http(s) address with a host and nothing after its path: links are made by adding
    `/r/<code>` to it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise SettingsError(
            "public_url", f"{url!r} is not an http(s) address like https://estate.example.com"
        )


def settings_from_secret(secret: str | None, *, warn: bool = True) -> ApiSettings:
    """Settings with the given secret, or a random one (and a warning saying what that means)."""
    if secret:
        return ApiSettings(secret=secret)
    if warn:
        log.warning(
            "no --api-secret (FACILITY_API_SECRET): using a random one; tokens and report "
            "codes will not survive a restart"
        )
    return ApiSettings()
