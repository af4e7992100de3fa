"""Whether the fast path may run on the installed paho-mqtt.

The fast path (fast.py) overrides or calls the private names below and writes `_in_packet` by
shape. They were checked against PAHO_VERSION, the release pyproject pins; `refusal()` names
the first thing that differs (another release, a name gone, another signature), and the
factory then takes the plain path. tests/unit/test_paho_guard.py fails on any difference, so
a paho upgrade is a deliberate step: read paho's changes to these methods, then re-record.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from types import ModuleType
from typing import Final

import paho.mqtt as paho_package
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

PAHO_VERSION: Final = "2.2.0"

PRIVATE_METHODS: Final[Mapping[str, str]] = {
    # overridden
    "_sock_recv": "(self, bufsize: 'int') -> 'bytes'",
    "loop_read": "(self, max_packets: 'int' = 1) -> 'MQTTErrorCode'",
    "loop_start": "(self) -> 'MQTTErrorCode'",
    "_sock_close": "(self) -> 'None'",
    "_handle_publish": "(self) -> 'MQTTErrorCode'",
    "_handle_pubackcomp": "(self, cmd: \"Literal['PUBACK', 'PUBCOMP']\") -> 'MQTTErrorCode'",
    "_handle_connack": "(self) -> 'MQTTErrorCode'",
    "_packet_write": "(self) -> 'MQTTErrorCode'",
    # called
    "_loop_rc_handle": "(self, rc: 'MQTTErrorCode') -> 'MQTTErrorCode'",
    "_packet_read": "(self) -> 'MQTTErrorCode'",
    "_packet_handle": "(self) -> 'MQTTErrorCode'",
    "_send_puback": "(self, mid: 'int') -> 'MQTTErrorCode'",
    "_packet_queue": (
        "(self, command: 'int', packet: 'bytes | bytearray', mid: 'int', qos: 'int', "
        "info: 'MQTTMessageInfo | None' = None) -> 'MQTTErrorCode'"
    ),
    "_mid_generate": "(self) -> 'int'",
    "_reset_sockets": "(self, sockpair_only: 'bool' = False) -> 'None'",
}
"""Methods of paho.mqtt.client.Client the fast path overrides or calls, with the signature
`inspect.signature` gave on PAHO_VERSION."""

PRIVATE_ATTRIBUTES: Final = (
    "_in_packet",
    "_protocol",
    "_sock",
    "_thread",
    "_manual_ack",
    "_msgtime_mutex",
    "_last_bytes_received",
)
"""Instance attributes the fast path reads (and `_in_packet`, writes)."""

IN_PACKET_KEYS: Final = frozenset(
    {
        "command",
        "have_remaining",
        "remaining_count",
        "remaining_mult",
        "remaining_length",
        "packet",
        "to_process",
        "pos",
    }
)
"""The shape of `_in_packet` the fast path writes whole."""


def differences(client_class: type[paho.Client] = paho.Client) -> list[str]:
    """Every private name of the record that is missing or has another signature."""
    found = []
    for name, recorded in PRIVATE_METHODS.items():
        method = getattr(client_class, name, None)
        if method is None:
            found.append(f"Client.{name} is gone")
        elif (signature := str(inspect.signature(method))) != recorded:
            found.append(f"Client.{name}{signature} was {name}{recorded}")
    client = client_class(CallbackAPIVersion.VERSION2)
    found.extend(
        f"Client().{name} is gone" for name in PRIVATE_ATTRIBUTES if not hasattr(client, name)
    )
    in_packet = getattr(client, "_in_packet", None)
    if isinstance(in_packet, dict) and set(in_packet) != IN_PACKET_KEYS:
        found.append(f"Client()._in_packet has keys {sorted(in_packet)}")
    return found


def refusal(
    paho_module: ModuleType = paho_package, client_class: type[paho.Client] = paho.Client
) -> str | None:
    """Why the fast path must not run here, or None when it may."""
    version = getattr(paho_module, "__version__", "unknown")
    if version != PAHO_VERSION:
        return f"paho-mqtt {version} is installed; the fast path was written against {PAHO_VERSION}"
    found = differences(client_class)
    if found:
        return f"paho-mqtt {version} differs from the record: {'; '.join(found)}"
    return None
