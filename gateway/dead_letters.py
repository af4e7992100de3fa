"""Dead-letter stores: every rejected message or reading is kept with its reason."""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import orjson

from gateway.decoder import Rejection


@dataclass(frozen=True, slots=True)
class DeadLetter:
    received_ms: int
    reason: str
    topic: str
    detail: str
    excerpt: str

    @staticmethod
    def from_rejection(rejection: Rejection, received_ms: int) -> DeadLetter:
        return DeadLetter(
            received_ms, str(rejection.reason), rejection.topic, rejection.detail, rejection.excerpt
        )


class DeadLetterStore(Protocol):
    def add(self, letters: Sequence[DeadLetter]) -> None: ...

    def recent(self, limit: int) -> list[DeadLetter]: ...


class MemoryDeadLetters:
    """Keeps the newest `capacity` letters in memory (tests, and `facility up` without a file)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._letters: deque[DeadLetter] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def add(self, letters: Sequence[DeadLetter]) -> None:
        with self._lock:
            self._letters.extend(letters)

    def recent(self, limit: int) -> list[DeadLetter]:
        with self._lock:
            return list(self._letters)[-limit:]


class JsonlDeadLetters:
    """Appends letters to a JSON-lines file, rotating it to `<name>.1` past `max_bytes`."""

    def __init__(self, path: Path, *, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def add(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        data = b"".join(orjson.dumps(asdict(letter)) + b"\n" for letter in letters)
        with self._lock:
            if self.path.exists() and self.path.stat().st_size + len(data) > self.max_bytes:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            with self.path.open("ab") as out:
                out.write(data)

    def recent(self, limit: int) -> list[DeadLetter]:
        with self._lock:
            if not self.path.exists():
                return []
            lines = self.path.read_bytes().splitlines()[-limit:]
        return [DeadLetter(**orjson.loads(line)) for line in lines]
