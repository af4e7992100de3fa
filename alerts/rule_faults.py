"""The faults the rules engine reports, as records: a rule's fault at a reading (its title
filled from the reading, named after the shared asset when the rule has one) and the site
incident.
"""

from __future__ import annotations

from collections.abc import Mapping

from alerts.faults import FaultOpened
from alerts.interface import Category, Rule, Severity
from facility.catalog import KindSpec
from facility.site import Asset, Device, Site

SITE_RULE_ID = "site.silent"


def rule_fault(
    rule: Rule,
    device: Device,
    asset: Asset | None,
    kind: KindSpec,
    reading: list[float],
    started_ms: int,
    at_ms: int,
    family_rules: tuple[str, ...],
    *,
    flap: bool = False,
    extra: Mapping[str, float] | None = None,
) -> FaultOpened:
    """The fault `rule` opens at `device`'s `reading`; `extra`: the rule's title values."""
    values = {f.name: float(v) for f, v in zip(kind.fields, reading, strict=True)}
    values.update(extra or {})
    # a fault of a shared asset is named after the asset, and lists who saw it
    name, ident, building, unit = (
        (asset.name, asset.id, asset.building_id, asset.unit_id)
        if asset is not None
        else (device.name, device.id, device.building_id, device.unit_id)
    )
    fields = {"device": name, "device_id": ident, "building": building, "unit": unit, **values}
    title = _fill(rule.title, fields)
    return FaultOpened(
        rule_id=rule.id,
        kind=rule.kind,
        device_id=ident,
        building_id=building,
        unit_id=unit,
        observed_by=(device.id,) if asset is not None else (),
        severity=rule.severity,
        category=rule.category,
        title=title,
        title_zh=_fill(rule.title_zh, fields) if rule.title_zh else None,
        started_ms=started_ms,
        detected_ms=at_ms,
        family_rules=family_rules,
        flap=flap,
        site_id=device.site_id,
    )


def _fill(template: str, fields: Mapping[str, object]) -> str:
    try:
        return template.format(**fields)
    except (ValueError, KeyError, IndexError):
        return template


def site_fault(site: Site, started_ms: int, now_ms: int) -> FaultOpened:
    """The site incident: no device of the site reports (one fault, not one per device); in a
    portfolio, `site` is the estate that went silent (one of its parts)."""
    return FaultOpened(
        rule_id=SITE_RULE_ID,
        kind="site",
        device_id=site.id,
        building_id=site.id,
        unit_id="",
        severity=Severity.CRITICAL,
        category=Category.SITE,
        title=f"Site silent: no device of {site.name} reports (power, network or gateway)",
        title_zh=f"全小区失联：{site.name} 没有任何设备上报（停电、网络或网关故障）",
        started_ms=started_ms,
        detected_ms=now_ms,
        site_id=site.id,
    )
