"""Settings of preventive maintenance, built by the composition root (`runtime/`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from facility.errors import SettingsError

DAY_S = 86_400


@dataclass(frozen=True, slots=True, kw_only=True)
class MaintenanceSettings:
    plans: Path | None = None
    """Operator plan file (TOML, docs/maintenance.md): replaces default plans of the same id,
    adds plans, or turns one off (`enabled = false`). Default: the built-in plans only."""
    lead_s: float = 2 * DAY_S
    """A plan's scheduled work order is created this long before the plan is due; the logbook
    calls a plan `due` from then on."""
    scheduler: bool = True
    """Run the maintenance scheduler in this API process. Safe on every replica: creating an
    order is idempotent in the database."""
    interval_s: float = 60.0
    """How often the scheduler looks for plans coming due (and records telemetry evidence)."""

    def __post_init__(self) -> None:
        if self.lead_s < 0:
            raise SettingsError("maintenance-lead-s", "must not be negative")
        if self.lead_s > 366 * DAY_S:
            raise SettingsError("maintenance-lead-s", "must be at most 366 days")
        if self.interval_s <= 0:
            raise SettingsError("maintenance-interval-s", "must be more than 0")
