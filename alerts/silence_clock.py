"""When the rules' timer may judge silence: the stream's own progress, not the wall clock.

A device is offline, and a site silent, only if the gateway could have seen its readings. Three
things tell how far the stream has got (docs/rules.md, "Catching up", "A stalled gateway"):

- the **arrival lag**: readings handed over far older than their arrival (a backlog being
  drained) put the stream at the newest reading's time plus the wall time since it arrived;
  while draining, at the latest time where one of a batch's messages *begins* instead: a
  message of many readings is published once its newest is taken, so the other devices'
  messages for the same span may still be queued behind it (100-s messages, devices
  interleaved: judged by the newest reading, every device not yet read looks 100 s silent);
- **caught up**: the pipeline says when a take emptied the MQTT client's queue while connected
  (once the rules saw that batch); silence is never judged past the last such moment, so a
  gateway that takes nothing (stopped, cut off, blocked on a full spool) calls nobody silent;
  the newest reading seen also counts, so a gateway that keeps pace with only full takes moves on;
- **a stall of the process**: when the timer itself did not run for a while (SIGSTOP, a paused
  VM), an empty take right after waking proves nothing (paho's thread had no chance to read
  the backlog yet): the clock goes back to before the stall and believes "caught up" again only
  once a batch arrived after it, or after a grace period (a site that went dark meanwhile).

Without any "caught up" signal (backtests, tests driving the engine by hand) only the arrival
lag applies, as before.
"""

from __future__ import annotations

from alerts.rule_language import NEVER


class SilenceClock:
    def __init__(
        self, *, stall_after_ms: int = 5000, grace_ms: int = 10_000, backlog_after_ms: int = 5000
    ) -> None:
        self.stall_after_ms = stall_after_ms
        """A gap this long between two ticks means the process was stopped."""
        self.backlog_after_ms = backlog_after_ms
        """Readings arriving this much later than the newest one's time: a backlog draining."""
        self.grace_ms = grace_ms
        """After a stall, "caught up" is believed again at the latest this long after it."""
        self.arrival_lag_ms = 0
        """How far the newest reading lagged its arrival (a backlog being drained)."""
        self.behind_ms = 0
        """How far behind the wall clock the last tick judged silence."""
        self._stream_ms = NEVER
        """The newest reading's time seen so far."""
        self._progress_ms = NEVER
        """How far the stream has surely got by the readings seen (see `arrived`)."""
        self._progress_lag_ms = 0
        """How far `_progress_ms` lagged the wall clock when its batch arrived."""
        self._current_ms: int | None = None
        """How far the stream is known to have got (None: no "caught up" signal yet)."""
        self._last_tick_ms: int | None = None
        self._distrust_until_ms = NEVER
        self._batch_since_stall = True

    def arrived(self, newest_ms: int, arrived_ms: int, started_ms: int | None = None) -> None:
        """A batch whose newest reading is `newest_ms` reached the rules at `arrived_ms`;
        `started_ms`: the latest time at which one of its messages begins (its oldest reading;
        None: as `newest_ms`). Live, the newest reading says how far the stream got; draining
        a backlog, only `started_ms` does (devices' messages of the same span may still be
        queued)."""
        self._stream_ms = max(self._stream_ms, newest_ms)
        self.arrival_lag_ms = max(arrived_ms - self._stream_ms, 0)
        draining = self.arrival_lag_ms > self.backlog_after_ms and started_ms is not None
        progress = min(started_ms, newest_ms) if draining and started_ms is not None else newest_ms
        self._progress_ms = max(self._progress_ms, progress)
        self._progress_lag_ms = max(arrived_ms - self._progress_ms, 0)
        self._batch_since_stall = True
        if self._current_ms is not None:  # a saturated gateway (only full takes) moves on
            self._current_ms = max(self._current_ms, self._progress_ms)

    def caught_up(self, as_of_ms: int) -> None:
        """The gateway had handed over everything it had received by `as_of_ms`."""
        if not self._batch_since_stall and as_of_ms < self._distrust_until_ms:
            return  # just after a stall: the take may not have had a chance to fill
        if self._current_ms is None or as_of_ms > self._current_ms:
            self._current_ms = as_of_ms

    def judge(self, now_ms: int) -> int:
        """The time at which silence may be judged on a tick at wall time `now_ms`."""
        last, self._last_tick_ms = self._last_tick_ms, now_ms
        if last is not None and now_ms - last > self.stall_after_ms:
            self._stalled(last, now_ms)
        judged = now_ms - self._progress_lag_ms
        if self._current_ms is not None:
            judged = min(judged, self._current_ms)
        self.behind_ms = max(now_ms - judged, 0)
        return judged

    def _stalled(self, before_ms: int, now_ms: int) -> None:
        """The timer did not run from `before_ms` to `now_ms`: neither did the rest."""
        if self._current_ms is not None:
            self._current_ms = min(self._current_ms, max(before_ms, self._progress_ms))
        self._distrust_until_ms = now_ms + self.grace_ms
        self._batch_since_stall = False
