"""The rules timer: `AlertsSink.tick` every `tick_s` (silence is seen with no data arriving)
and a checkpoint of the engine's state every `checkpoint_s`, on a thread of its own."""

from __future__ import annotations

import logging
import threading
import time

from alerts.sink import AlertsSink
from facility.clock import Clock, now_ms

log = logging.getLogger(__name__)


class RulesTimer:
    def __init__(
        self,
        sink: AlertsSink,
        *,
        tick_s: float = 1.0,
        checkpoint_s: float = 10.0,
        clock_ms: Clock = now_ms,
    ) -> None:
        self.sink = sink
        self.tick_s = tick_s
        self.checkpoint_s = checkpoint_s
        self.clock_ms = clock_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        last_checkpoint = time.monotonic()
        while not self._stop.wait(self.tick_s):
            try:
                self.sink.tick(self.clock_ms())
                if time.monotonic() - last_checkpoint >= self.checkpoint_s:
                    self.sink.checkpoint()
                    last_checkpoint = time.monotonic()
            except Exception:  # a database hiccup must not end the timer for good
                log.exception("rules timer failed; retrying")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rules-timer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        try:
            self.sink.checkpoint()
        except Exception:
            log.exception("rules checkpoint at stop failed")
