"""Errors of the MQTT transport; paho's errors are mapped to these at the edge, with the cause.

FacilityError                     (facility.errors)
 └── MqttError                    the transport could not do what was asked
      ├── MqttConnectError        no connection: unreachable, refused (CONNACK), TLS failed
      ├── MqttTimeoutError        no connection, no room in flight or no ack within a deadline
      └── MqttProtocolError       not MQTT: a broker's bad packet (the connection is dropped),
                                  or options paho says MQTT does not allow
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from paho.mqtt.client import error_string
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.exception import MQTTException
from paho.mqtt.subscribeoptions import MQTTException as SubscribeOptionsError

from facility.errors import FacilityError


class MqttError(FacilityError):
    def __init__(self, message: str, code: int | None = None) -> None:
        self.code = code
        """paho's error code or the broker's reason code, when there is one."""
        super().__init__(message if code is None else f"{message} (code {code})")


class MqttConnectError(MqttError):
    pass


class MqttTimeoutError(MqttError):
    pass


class MqttProtocolError(MqttError):
    pass


PAHO_ERRORS: tuple[tuple[type[BaseException], type[MqttError]], ...] = (
    (MQTTException, MqttProtocolError),  # MalformedPacket and paho's other protocol errors
    (SubscribeOptionsError, MqttProtocolError),  # a class of its own in subscribeoptions.py
    (TimeoutError, MqttTimeoutError),
    (OSError, MqttConnectError),  # refused, reset, DNS, TLS (ssl.SSLError), websockets
    (ValueError, MqttConnectError),  # paho refused the host, port or protocol options
)
"""What each error paho raises becomes, first match wins; a test fails on one left out."""


def mapped(exc: BaseException) -> type[MqttError] | None:
    for paho_type, ours in PAHO_ERRORS:
        if isinstance(exc, paho_type):
            return ours
    return None


@contextmanager
def paho_errors(what: str) -> Iterator[None]:
    """Raise paho's errors inside as ours, saying what was being done, with the cause."""
    try:
        yield
    except MqttError:
        raise
    except Exception as exc:
        ours = mapped(exc)
        if ours is None:
            raise
        raise ours(f"{what}: {exc}") from exc


def check_rc(rc: MQTTErrorCode | int, what: str) -> None:
    """paho reports some failures as a return code instead of raising."""
    if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
        raise MqttConnectError(f"{what}: {error_string(rc)}", code=int(rc))
