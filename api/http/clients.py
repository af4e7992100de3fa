"""Who is asking, and over what: the client address and scheme behind trusted proxies.

A proxy's `X-Forwarded-For` is believed only when the peer is one of `trusted_proxies`; from
it, the right-most address that is not itself a trusted proxy is the client (every proxy
appends the address it saw, so addresses left of that are whatever the client sent).
Without trusted proxies the peer is the client, whatever the headers say: rotating
`X-Forwarded-For` cannot buy a client fresh rate-limit budgets.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from starlette.requests import HTTPConnection

from facility.errors import SettingsError

if TYPE_CHECKING:
    from api.settings import ApiSettings

UNKNOWN: Final = "unknown"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str], setting: str = "trusted_proxies") -> tuple[Network, ...]:
    """Addresses and CIDR networks; a bad one is a SettingsError naming `setting`."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise SettingsError(
                setting, f"{value!r} is not an IP address or network (e.g. 10.0.0.0/8)"
            ) from None
    return tuple(networks)


class TrustedProxies:
    """The proxies whose forwarding headers are believed."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.networks = parse_networks(values)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, host: str | None) -> bool:
        if not self.networks or not host:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False  # a unix socket path or a name: not an address we were told to trust
        return any(address in network for network in self.networks)

    def client(self, peer: str | None, forwarded_for: str | None) -> str:
        """The client's address: the peer, or (from a trusted peer) the right-most untrusted
        address of X-Forwarded-For (the left-most one when every address is trusted)."""
        if not self.trusts(peer) or not forwarded_for:
            return peer or UNKNOWN
        hops = [_host(part) for part in forwarded_for.split(",")]
        hops = [hop for hop in hops if hop]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop
        return hops[0] if hops else peer or UNKNOWN

    def scheme(self, peer: str | None, scheme: str, forwarded_proto: str | None) -> str:
        """`https` when the connection, or a trusted proxy's X-Forwarded-Proto, says so."""
        if forwarded_proto and self.trusts(peer):
            last = forwarded_proto.split(",")[-1].strip().lower()
            if last in ("http", "https"):
                return last
        return scheme


def _host(part: str) -> str:
    """An X-Forwarded-For entry without a port: `1.2.3.4:5`, `[::1]:5`, `::1`."""
    part = part.strip()
    if part.startswith("["):
        return part[1 : part.find("]")] if "]" in part else ""
    if part.count(":") == 1:
        return part.split(":", 1)[0]
    return part


@functools.lru_cache(maxsize=16)
def trusted_proxies(values: tuple[str, ...]) -> TrustedProxies:
    """Parsed once per setting value (settings are frozen: their tuple is the key)."""
    return TrustedProxies(values)


def client_address(connection: HTTPConnection, trusted: tuple[str, ...]) -> str:
    """The real client of a request, given the `trusted_proxies` setting."""
    peer = connection.client.host if connection.client else None
    return trusted_proxies(trusted).client(peer, connection.headers.get("x-forwarded-for"))


def over_tls(connection: HTTPConnection, trusted: tuple[str, ...]) -> bool:
    """The client reached us over HTTPS (directly, or through a trusted TLS-terminating proxy)."""
    peer = connection.client.host if connection.client else None
    scheme = trusted_proxies(trusted).scheme(
        peer, connection.url.scheme, connection.headers.get("x-forwarded-proto")
    )
    return scheme in ("https", "wss")


def cookie_is_secure(connection: HTTPConnection, settings: ApiSettings) -> bool:
    """Mark the token cookie `Secure`: when configured, or when this request came over TLS."""
    return settings.cookie_secure or over_tls(connection, settings.trusted_proxies)
