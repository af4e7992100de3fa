"""Errors of the simulators.

FacilityError                     (facility.errors)
 └── SimulatorError               anything the simulators refuse
      ├── InjectionError          a fault injection (--inject text or scenario entry) is wrong
      ├── ScenarioError           a scenario file is wrong (names the file and line)
      └── PublishError            the MQTT broker cannot be reached or did not acknowledge
"""

from __future__ import annotations

from pathlib import Path

from facility.errors import FacilityError


class SimulatorError(FacilityError):
    pass


class InjectionError(SimulatorError):
    pass


class PublishError(SimulatorError):
    pass


class ScenarioError(SimulatorError):
    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else f"{self.path}"
        super().__init__(f"{where}: {message}")
