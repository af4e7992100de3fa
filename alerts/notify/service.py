"""The notification relays of one site, built from the alerts settings."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import replace

import httpx
from sqlalchemy import Engine

from alerts.notify.interface import Notice
from alerts.notify.outbox import OutboxRow
from alerts.notify.relay import Relay, RelaySettings, merge_metrics
from alerts.settings import AlertSettings
from alerts.store import WorkOrder
from facility.clock import Clock, now_ms
from facility.portfolio import site_for
from facility.prometheus import Metric
from facility.site import Site


def order_link(public_url: str | None, order_id: int) -> str | None:
    """Where the dashboard opens one work order."""
    if public_url is None:
        return None
    return f"{public_url.rstrip('/')}/#/orders/{order_id}"


class NoticeMaker:
    """Adds the site's names and the dashboard link to an outbox row."""

    def __init__(self, site: Site, public_url: str | None) -> None:
        self.site = site
        self.public_url = public_url
        self._units = {u.id: u.name for b in site.buildings for u in b.units}
        self._sites = {s.id: s for s in site.sites}
        """A portfolio's estates: an order's times in its estate's zone, an incident's name."""

    def __call__(self, row: OutboxRow, order: WorkOrder) -> Notice:
        building = self.site.building_by_id.get(order.building_id)
        device = self.site.by_id.get(order.device_id) if order.device_id else None
        return Notice(
            event_id=row.event_id,
            event=row.event,
            at_ms=row.at_ms,
            note=row.note,
            order=order,
            building_name=building.name if building else self._site_name(order.building_id),
            unit_name=self._units.get(order.unit_id) if order.unit_id else None,
            device_name=device.name if device else order.device_id,
            url=order_link(self.public_url, order.id),
            time_zone=self._zone(order),
        )

    def _site_name(self, building_id: str) -> str:
        """A site incident's "building" is its site: named after it."""
        site = self._sites.get(building_id)
        return site.name if site is not None else building_id

    def _zone(self, order: WorkOrder) -> str:
        """The zone of the order's building's estate (or of the estate it was filed on: an
        order of a whole estate, or one filed before its gateway knew estates)."""
        site = site_for(self.site, order.building_id) or self._sites.get(order.site_id)
        return (site or self.site).timezone


class Notifications:
    """One relay per configured channel. Every gateway on one database runs them; per channel,
    one sends at a time (its cursor and lease are in the database)."""

    def __init__(
        self,
        settings: AlertSettings,
        site: Site,
        engine: Engine,
        *,
        clock_ms: Clock = now_ms,
        relay_settings: RelaySettings | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        base = relay_settings or RelaySettings()
        owner = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        maker = NoticeMaker(site, settings.public_url)
        self.relays = [
            Relay(
                c.channel,
                engine,
                owner,
                maker,
                accepts=c.accepts,
                settings=replace(base, max_age_s=c.max_age_s),
                clock_ms=clock_ms,
                transport=transport,
            )
            for c in settings.channels
        ]

    def start(self) -> None:
        for relay in self.relays:
            relay.start()

    def stop(self) -> None:
        for relay in self.relays:
            relay.stop()

    def prometheus(self) -> list[Metric]:
        return merge_metrics(self.relays)
