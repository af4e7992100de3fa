"""An in-process MQTT broker (amqtt) for the demo: no Mosquitto needed on the machine.

It runs on its own asyncio loop in a daemon thread. amqtt speaks MQTT 3.1.1, so components
that use it connect with protocol 3.1.1. It lets anyone connect and publish anywhere (no
accounts, no ACL), so it listens on a loopback address only and refuses any other: real
devices talk to a broker set up as in docs/security.md.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

from facility.hosts import is_loopback
from gateway.errors import GatewayError

log = logging.getLogger(__name__)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class EmbeddedBroker:
    def __init__(self, host: str = "127.0.0.1", port: int = 11883) -> None:
        if not is_loopback(host):
            raise GatewayError(
                f"the embedded MQTT broker takes anonymous clients, so it listens on loopback "
                f"only, not on {host!r}; give devices a broker set up as in docs/security.md"
            )
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout_s: float = 15.0) -> None:
        if not port_is_free(self.host, self.port):
            raise GatewayError(
                f"setting --mqtt-port: {self.host}:{self.port} is already in use; "
                "choose another port for the embedded broker"
            )
        self._thread = threading.Thread(target=self._run, name="embedded-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise GatewayError("the embedded MQTT broker did not start in time")
        if self._error is not None:
            raise GatewayError(f"the embedded MQTT broker failed: {self._error}") from self._error

    def _run(self) -> None:
        from amqtt.broker import Broker  # heavy import, only when the demo broker is wanted

        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        try:
            self._broker = Broker(config, loop=loop)
            loop.run_until_complete(self._broker.start())
        except BaseException as exc:  # reported to start() and re-raised there
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        log.info(
            "embedded MQTT broker on %s:%d (loopback only, anonymous: for the demo, not for "
            "devices)",
            self.host,
            self.port,
        )
        loop.run_forever()

    def stop(self) -> None:
        loop, broker = self._loop, self._broker
        if loop is None or broker is None or not loop.is_running():
            return
        future = asyncio.run_coroutine_threadsafe(broker.shutdown(), loop)
        try:
            future.result(timeout=10)
        except Exception:
            log.exception("embedded broker did not shut down cleanly")
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
