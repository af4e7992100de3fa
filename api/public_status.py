"""A building's outages in plain words for residents: what is out, since when, what is being
done — read from the open work orders, and nothing else (no names, unit or order ids,
residents' texts or staff notes)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from alerts.problems import public_outages
from alerts.store import WorkOrderStore
from api.resident_schemas import OutageOut, PublicStatusOut
from api.words import device_name, outage_sentence
from facility.site import Building


def public_status(
    store: WorkOrderStore, building: Building, tz: ZoneInfo, now_ms: int
) -> PublicStatusOut:
    devices = {d.id: d for d in building.devices}
    outages = []
    for order in public_outages(store.open_work_orders([building.id])):
        device = devices.get(order.device_id or "")
        if device is None:
            continue  # an asset or a device no longer on the site: no name to say it with
        text = outage_sentence(order, device.name, tz, now_ms)
        if text is not None:
            outages.append(OutageOut(kind=device.kind, text=text))
    return PublicStatusOut(building=device_name(building.name), updated_ms=now_ms, outages=outages)
