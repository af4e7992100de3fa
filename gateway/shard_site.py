"""The part of a portfolio one gateway serves: its shard's sites, and their topic filters.

A gateway judges silence for every device of its site, so a gateway must know exactly the
devices whose telemetry reaches it: `shard.sites` restricts a portfolio to some of its
estates (the others are another gateway's), and the shard's default topic filters follow.
"""

from __future__ import annotations

from facility.errors import SettingsError
from facility.portfolio import merge_sites
from facility.site import Site
from facility.wire import subscription
from gateway.leadership import ShardSettings


def shard_site(shard: ShardSettings, site: Site) -> Site:
    """The site the shard serves: `site` itself, or the estates `shard.sites` names."""
    if not shard.sites:
        return site
    known = {s.id: s for s in site.sites}
    unknown = [s for s in shard.sites if s not in known]
    if unknown:
        raise SettingsError(
            "shard-sites",
            f"no site {', '.join(map(repr, unknown))} in the site file(s); "
            f"they hold: {', '.join(known)}",
        )
    if not site.scoped:
        return site  # one site file, and the shard names it
    if set(shard.sites) == set(known):
        return site
    return merge_sites(s for s in site.sites if s.id in shard.sites)


def shard_topics(shard: ShardSettings, site: Site) -> tuple[str, ...]:
    """The shard's MQTT topic filters: as set, else one per site it serves."""
    return shard.topics or tuple(subscription(s.id) for s in site.sites)


def shard_name(shard: ShardSettings, site: Site) -> str:
    """The shard's name: as set, else `site-<site id>` (a whole portfolio: `site-portfolio`),
    or `sites-<id>+<id>` when `shard.sites` picks some estates of the portfolio `site`."""
    if shard.name:
        return shard.name
    served = shard_site(shard, site)
    if served is not site:
        return "sites-" + "+".join(s.id for s in served.sites)
    return f"site-{site.id}"
