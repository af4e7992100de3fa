"""bench/ingest_bench.py's rows and how they are reported: CPU per process per reading and per
message beside each row, and the issue's targets judged on them (the text of its block in
docs/benchmarks.md, which `bench.doc_blocks` writes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median

import psutil


@dataclass
class Row:
    name: str
    readings: int
    messages: int
    seconds: float
    note: str = ""
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds over the timed span by process: gateway, broker, store (those measured)."""

    def cpu_us(self, process: str, per: str) -> float | None:
        """CPU µs of `process` per reading or per message, None when not measured."""
        if process not in self.cpu:
            return None
        count = self.readings if per == "reading" else self.messages
        return self.cpu[process] * 1e6 / count

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.seconds

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.seconds


class CpuMeter:
    """CPU seconds the gateway, the broker and InfluxDB used over a span, and how busy the whole
    machine was: on a shared machine, a slow row with an idle gateway means it was starved."""

    def __init__(self, gateway: int | None, broker: int | None, store: int | None) -> None:
        pids = {"gateway": gateway, "broker": broker, "store": store}
        self.pids = {name: pid for name, pid in pids.items() if pid is not None}
        self.start = self._sample()

    @staticmethod
    def _busy() -> tuple[float, float]:
        times = psutil.cpu_times()
        return sum(times) - times.idle, times.idle

    def _sample(self) -> dict[str, float]:
        out = {}
        for name, pid in self.pids.items():
            try:
                cpu = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            out[name] = cpu.user + cpu.system
        out["machine"], out["idle"] = self._busy()
        return out

    def used(self) -> dict[str, float]:
        """CPU seconds since the meter started, by process, and the machine's busy / idle."""
        end = self._sample()
        return {k: end[k] - self.start[k] for k in end if k in self.start}

    @staticmethod
    def note_of(used: dict[str, float]) -> str:
        names = {"gateway": "gateway", "broker": "Mosquitto", "store": "InfluxDB"}
        parts = [f"{label} {used[key]:.1f}" for key, label in names.items() if key in used]
        return (
            f"CPU s: {', '.join(parts)}; whole machine {used['machine']:.1f} busy / "
            f"{used['idle']:.1f} idle"
        )


SECTION = "## Ingest (`bench/ingest_bench.py`)"


def _us(value: float | None) -> str:
    return "" if value is None else f"{value:,.1f}"


def table(rows: list[Row], reference: Row) -> str:
    """The rows, with the CPU each process spent per reading and per message beside them."""
    out = [
        "| what | readings | messages | seconds | readings/s | messages/s | vs naive | "
        "gateway CPU µs/reading | gateway CPU µs/message | Mosquitto CPU µs/message | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        ratio = row.readings_per_s / reference.readings_per_s
        out.append(
            f"| {row.name} | {row.readings:,} | {row.messages:,} | {row.seconds:.2f} | "
            f"{row.readings_per_s:,.0f} | {row.messages_per_s:,.0f} | {ratio:,.1f}x | "
            f"{_us(row.cpu_us('gateway', 'reading'))} | {_us(row.cpu_us('gateway', 'message'))} | "
            f"{_us(row.cpu_us('broker', 'message'))} | {row.note} |"
        )
    return "\n".join(out)


@dataclass(frozen=True)
class Round:
    """One pass of the rows a target compares, run one after another on the same services."""

    batched: Row
    single: Row
    store_ceiling_two: Row
    """InfluxDB's own ceiling for the gateway's points from two writers at once."""

    @property
    def share(self) -> float:
        return self.batched.readings_per_s / self.store_ceiling_two.readings_per_s


@dataclass(frozen=True)
class Targets:
    """The rows the issue's targets are judged on: medians over rounds, because one round's
    ceiling moved by a third between runs on this machine (each round's figure is listed)."""

    rounds: list[Round]
    broker: Row
    store_ceiling: Row
    """InfluxDB's own ceiling for the gateway's points (the same points, prepared), one writer."""

    def summary(self) -> str:
        per_reading = [r.batched.cpu_us("gateway", "reading") or 0.0 for r in self.rounds]
        per_message = [r.single.cpu_us("gateway", "message") or 0.0 for r in self.rounds]
        broker_here = [r.single.cpu_us("broker", "message") or 0.0 for r in self.rounds]
        at_most = sum(g <= b for g, b in zip(per_message, broker_here, strict=True))
        broker_alone = self.broker.cpu_us("broker", "message") or 0.0
        first = self.rounds[0]
        share = first.batched.readings_per_s / self.store_ceiling.readings_per_s
        shares = [r.share for r in self.rounds]
        n = len(self.rounds)
        return "\n".join([
            f"- gateway CPU per reading, 100-reading messages: **{median(per_reading):.1f} µs**, "
            f"median of {n} rounds ({_each(per_reading, '{:.1f}')}; target ≤ 2 µs)",
            f"- gateway CPU per message, 1-reading messages: **{median(per_message):.1f} µs**; "
            f"Mosquitto's own in the same rows: {median(broker_here):.1f} µs (medians of {n} "
            f"rounds; the gateway used no more than Mosquitto in {at_most} of them: "
            f"{_each(per_message, '{:.1f}')} against {_each(broker_here, '{:.1f}')}), "
            f"{broker_alone:.1f} µs draining to mosquitto_sub (target: the gateway ≤ Mosquitto)",
            f"- end to end, 100-reading messages: **{median(shares):.0%} of InfluxDB's two-writer "
            f"ceiling for the same points**, median of {n} rounds, each measured beside its own "
            f"ceiling ({_each(shares, '{:.0%}')}; target ≥ 90 %); first round "
            f"{first.batched.readings_per_s:,.0f} readings/s against "
            f"{first.store_ceiling_two.readings_per_s:,.0f} points/s, {share:.0%} of the "
            f"one-writer ceiling ({self.store_ceiling.readings_per_s:,.0f} points/s)",
        ])  # fmt: skip


def _each(values: list[float], fmt: str) -> str:
    return " / ".join(fmt.format(v) for v in values)
