"""Faults of shared assets: equipment several devices observe (a break tank seen by the pumps
of a set) has one fault, not one per device that sees it.

A rule with `asset = "break_tank"` reports, for a device that observes an asset of that type
(the site file's `[[assets]]`), a fault of the asset: the engine names it after the asset
(`FaultOpened.device_id` is the asset's id, `observed_by` the device). Per batch this module
turns the devices' faults into the asset's: the asset's fault opens when the first observer's
does (while none was open before the batch), further observers are reported as `observed`
(recorded on the asset's order), and it clears when the last observer's fault has cleared.
Whether an observer's fault is open is read from the engine's state arrays (`reported`), so
a checkpoint keeps it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from alerts.faults import FaultCleared, FaultOpened
from alerts.interface import Rule
from facility.batch import BoolArray
from facility.site import Asset, Site

Key = tuple[str, str]
"""(rule id, asset id)"""


@dataclass(frozen=True, slots=True)
class _Watch:
    rule: Rule
    asset: Asset
    rows: np.ndarray
    """The observers' rows in the rule's kind arrays."""


class AssetFaults:
    def __init__(self, site: Site, rules: Sequence[Rule]) -> None:
        by_type: dict[tuple[str, str], Asset] = {}
        for asset in site.assets:
            for device_id in asset.device_ids:
                by_type[(asset.type, device_id)] = asset
        self.asset_of = by_type
        """(asset type, device id) -> the asset of that type the device observes."""
        self._watches: dict[Key, _Watch] = {}
        self._by_device: dict[tuple[str, str], Key] = {}
        for rule in rules:
            if not rule.asset:
                continue
            for asset in site.assets:
                if asset.type != rule.asset:
                    continue
                observers = [
                    site.by_id[d] for d in asset.device_ids if site.by_id[d].kind == rule.kind
                ]
                if not observers:
                    continue
                key = (rule.id, asset.id)
                rows = np.array([d.kind_index for d in observers], np.intp)
                self._watches[key] = _Watch(rule, asset, rows)
                for d in observers:
                    self._by_device[(rule.id, d.id)] = key

    def rows_of(self, asset_id: str, kind: str) -> np.ndarray:
        """The rows (in `kind`'s arrays) of the devices that observe the asset."""
        for (_, aid), watch in self._watches.items():
            if aid == asset_id and watch.rule.kind == kind:
                return watch.rows
        return np.zeros(0, np.intp)

    def __bool__(self) -> bool:
        return bool(self._watches)

    def asset(self, rule: Rule, device_id: str) -> Asset | None:
        return self.asset_of.get((rule.asset, device_id)) if rule.asset else None

    def snapshot(self, reported: Callable[[Rule], BoolArray]) -> dict[Key, bool]:
        """Per watched (rule, asset): whether any observer's fault is open now."""
        return {k: bool(reported(w.rule)[w.rows].any()) for k, w in self._watches.items()}

    def regroup(
        self,
        before: Mapping[Key, bool],
        after: Mapping[Key, bool],
        opened: list[FaultOpened],
        cleared: list[FaultCleared],
    ) -> tuple[list[FaultOpened], list[FaultCleared], list[FaultOpened]]:
        """(opened, cleared, observed) with the observers' faults turned into the assets'."""
        out_opened: list[FaultOpened] = []
        observed: list[FaultOpened] = []
        firsts: dict[Key, list[FaultOpened]] = {}
        for fault in opened:
            key = self._key(fault.rule_id, fault.observed_by)
            if key is None:
                out_opened.append(fault)
            elif before[key]:
                observed.append(fault)
            else:
                firsts.setdefault(key, []).append(fault)
        for faults in firsts.values():
            faults.sort(key=lambda f: (f.detected_ms, f.started_ms))
            seen_by = tuple(dict.fromkeys(d for f in faults for d in f.observed_by))
            out_opened.append(dataclasses.replace(faults[0], observed_by=seen_by))
        out_cleared: list[FaultCleared] = []
        last_clear: dict[Key, FaultCleared] = {}
        for clear in cleared:
            key = self._by_device.get((clear.rule_id, clear.device_id))
            if key is None:
                out_cleared.append(clear)
            elif not after[key] and (before[key] or key in firsts):
                kept = last_clear.get(key)
                if kept is None or clear.cleared_ms > kept.cleared_ms:
                    last_clear[key] = dataclasses.replace(clear, device_id=key[1])
        out_cleared.extend(last_clear.values())
        return out_opened, out_cleared, observed

    def _key(self, rule_id: str, observed_by: tuple[str, ...]) -> Key | None:
        if not observed_by:
            return None
        return self._by_device.get((rule_id, observed_by[0]))
