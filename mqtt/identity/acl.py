"""The accounts of a site and the Mosquitto `acl_file` that confines each of them.

One account per device, named by the device id, may **write only its own telemetry topic**
(`facility/v1/{site}/{building}/{kind}/{device}/telemetry`) and read nothing. The gateway's
account may **only read** the site's topics: the gateway subscribes and publishes nothing (no
will, no replies). An optional simulator account, for development brokers only, may write every
device topic of the site. Mosquitto denies whatever no line allows, so there is nothing else.

The same file serves password logins and client certificates: with `use_identity_as_username
true` a certificate's CN becomes the username the ACL names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from facility.site import Site
from facility.wire import TOPIC_PREFIX, subscription, telemetry_topic

Role = Literal["device", "gateway", "simulator"]

GATEWAY_USER = "facility.gateway"
"""The gateway's account. Device ids cannot hold a `.`, so no device can be named so."""
SIMULATOR_USER = "facility.simulator"
"""The development account that may write for every device (off unless asked for)."""


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    role: Role
    topic: str
    """What it may use: its telemetry topic (device), the topic filter it reads (gateway) or
    writes (simulator)."""

    @property
    def access(self) -> Literal["read", "write"]:
        return "read" if self.role == "gateway" else "write"


def gateway_filter(site_id: str) -> str:
    """Everything under the site's prefix: what the gateway's subscription needs, no more."""
    return f"{TOPIC_PREFIX}/{site_id}/#"


def site_accounts(site: Site, *, simulator: bool = False) -> list[Account]:
    """The gateway's account, the simulator's (if asked for) and one per device, in site order."""
    accounts = [Account(GATEWAY_USER, "gateway", gateway_filter(site.id))]
    if simulator:
        accounts.append(Account(SIMULATOR_USER, "simulator", subscription(site.id)))
    accounts += [
        Account(d.id, "device", telemetry_topic(site.id, d.building_id, d.kind, d.id))
        for d in site.devices
    ]
    return accounts


BROKER_STATS_FILTER = "$SYS/broker/#"
"""Mosquitto's own statistics, read by the gateway (gateway.broker_stats)."""


def render_acl(site_id: str, accounts: Iterable[Account]) -> str:
    """Mosquitto's `acl_file`: a `user` block per account with its `topic` lines."""
    lines = [
        f"# Mosquitto acl_file for site {site_id!r}, written by `facility devices`.",
        "# Each device may publish only its own telemetry topic; the gateway may only read.",
        "# Anything not allowed here is denied. Reload the broker (SIGHUP) after a change.",
        "",
    ]
    for account in accounts:
        if account.role == "simulator":
            lines.append("# development only: may publish for every device of the site")
        lines += [f"user {account.username}", f"topic {account.access} {account.topic}"]
        if account.role == "gateway":  # the broker-wide figures in the gateway's /metrics
            lines.append(f"topic read {BROKER_STATS_FILTER}")
        lines.append("")
    return "\n".join(lines)
