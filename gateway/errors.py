"""Errors of the gateway.

FacilityError                     (facility.errors)
 └── GatewayError                 the gateway cannot run (e.g. the embedded broker failed)

The broker connection's errors are the transport's (mqtt.errors).
"""

from __future__ import annotations

from facility.errors import FacilityError


class GatewayError(FacilityError):
    pass
