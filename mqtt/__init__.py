"""The MQTT transport of the gateway and the simulators: paho-mqtt wrapped once.

`make_client` builds every client (factory.py) on one of two packet paths: the fast one
(fast.py, paho's private methods, pinned release) or paho's plain public API (plain.py),
chosen at start-up by the guard (guard.py) and the `packet_path` setting. `MqttClient`
(client.py) keeps it connected with the one reconnect policy (reconnect.py). It moves topics
and bytes; it knows nothing about readings. Its errors are in errors.py.
"""

from mqtt.client import MqttClient
from mqtt.errors import MqttConnectError, MqttError, MqttProtocolError, MqttTimeoutError
from mqtt.factory import choose_path, make_client
from mqtt.interface import ClientOptions, MqttProtocol, PacketPath, PublishSink, check_options
from mqtt.reconnect import ReconnectPolicy

__all__ = [
    "ClientOptions",
    "MqttClient",
    "MqttConnectError",
    "MqttError",
    "MqttProtocol",
    "MqttProtocolError",
    "MqttTimeoutError",
    "PacketPath",
    "PublishSink",
    "ReconnectPolicy",
    "check_options",
    "choose_path",
    "make_client",
]
