"""Errors of the simulators.

FacilityError                     (facility.errors)
 └── SimulatorError               anything the simulators refuse
      ├── InjectionError          a fault injection (--inject text or scenario entry) is wrong
      ├── ScenarioError           a scenario file is wrong (also a facility FileError)
      └── PublishError            the MQTT broker cannot be reached or did not acknowledge
"""

from __future__ import annotations

from facility.errors import FacilityError, FileError


class SimulatorError(FacilityError):
    pass


class InjectionError(SimulatorError):
    pass


class PublishError(SimulatorError):
    pass


class ScenarioError(SimulatorError, FileError):
    """A scenario file is wrong; names the file and the line."""
