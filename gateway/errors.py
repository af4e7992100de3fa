"""Errors of the gateway.

GatewayError
 └── MqttError            the broker connection failed (wraps paho's error codes)
"""

from __future__ import annotations

from facility.errors import FacilityError


class GatewayError(FacilityError):
    pass


class MqttError(GatewayError):
    def __init__(self, message: str, code: int | None = None) -> None:
        self.code = code
        super().__init__(message if code is None else f"{message} (code {code})")
