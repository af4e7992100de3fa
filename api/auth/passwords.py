"""Password hashing with Argon2id (argon2-cffi), wrapped once here."""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


@dataclass(frozen=True, slots=True)
class HashCost:
    time_cost: int = 2
    memory_kib: int = 19_456
    """OWASP's minimum for Argon2id (19 MiB, 2 passes); about 50 ms on this class of machine."""
    parallelism: int = 1


FAST_FOR_TESTS = HashCost(time_cost=1, memory_kib=64, parallelism=1)


class Passwords:
    def __init__(self, cost: HashCost = HashCost()) -> None:
        self._hasher = PasswordHasher(
            time_cost=cost.time_cost, memory_cost=cost.memory_kib, parallelism=cost.parallelism
        )
        # Verified against when the user does not exist, so both cases take as long.
        self._dummy = self._hasher.hash("not a password of anyone")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    def waste_time(self, password: str) -> None:
        """What checking a password costs, for a user that does not exist."""
        self.verify(self._dummy, password)
