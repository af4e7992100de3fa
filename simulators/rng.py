"""Counter-based random numbers: a draw depends only on (seed, stream, device, counter, slot).

Every device's random numbers are its own: a fault that changes what one device does (how many
trips it makes, when its doors open) never shifts the random stream of any other device, so a
run with a fault differs from the same run without it on exactly the targeted devices. The
generator is SplitMix64 over numpy uint64 arrays (wrap-around arithmetic is intended).
"""

from __future__ import annotations

import zlib

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_ROW = np.uint64(0xD6E8FEB86659FD93)
_SLOT = np.uint64(0xA0761D6478BD642F)
_TWO_53 = 1.0 / (1 << 53)


def _mix(x: U64) -> U64:
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def stream_key(seed: int, name: str) -> int:
    """A 64-bit key for one named stream of one seed."""
    return (seed * 0x2545F4914F6CDD1D + zlib.crc32(name.encode())) & 0xFFFF_FFFF_FFFF_FFFF


class CounterRandom:
    """Random draws for rows of devices, addressed by a per-row counter and a slot number."""

    def __init__(self, seed: int, name: str) -> None:
        self._key = np.array([stream_key(seed, name)], dtype=np.uint64)

    def uniform(self, rows: npt.ArrayLike, counter: npt.ArrayLike, slot: int) -> F64:
        """Uniform in (0, 1), one per row; `counter` is a scalar or one value per row."""
        r = np.asarray(rows, dtype=np.uint64).reshape(-1)
        c = np.asarray(counter, dtype=np.uint64).reshape(-1)
        salt = np.array([(slot * 0x9E37 + 1) & 0xFFFF_FFFF], dtype=np.uint64) * _SLOT
        x = _mix(_mix(self._key ^ salt ^ (r * _ROW)) + c)
        return ((x >> np.uint64(11)).astype(np.float64) + 0.5) * _TWO_53

    def block(self, rows: npt.ArrayLike, counter: npt.ArrayLike, slots: int) -> F64:
        """A (rows, slots) matrix of uniforms in (0, 1) in one vectorised call; column j is
        independent of `uniform(..., slot)` draws."""
        r = np.asarray(rows, dtype=np.uint64).reshape(-1, 1)
        c = np.asarray(counter, dtype=np.uint64).reshape(-1, 1)
        s = (np.arange(slots, dtype=np.uint64) + np.uint64(0x51ED)).reshape(1, -1) * _SLOT
        x = _mix(_mix(self._key ^ s ^ (r * _ROW)) + c)
        return ((x >> np.uint64(11)).astype(np.float64) + 0.5) * _TWO_53

    def normal(self, rows: npt.ArrayLike, counter: npt.ArrayLike, slot: int) -> F64:
        """Standard normal (Box-Muller over two uniforms)."""
        u1 = self.uniform(rows, counter, slot * 2 + 1)
        u2 = self.uniform(rows, counter, slot * 2 + 2)
        out: F64 = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
        return out

    def poisson(self, rows: npt.ArrayLike, counter: npt.ArrayLike, slot: int, mean: F64) -> F64:
        """Poisson counts with per-row means."""
        u = self.uniform(rows, counter, slot * 2 + 1)
        z = self.normal(rows, counter, slot * 2 + 2)
        return poisson(u, z, mean)


def normal_from(u1: F64, u2: F64) -> F64:
    """Standard normal from two uniforms (Box-Muller)."""
    out: F64 = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
    return out


def poisson(u: F64, z: F64, mean: npt.ArrayLike) -> F64:
    """Poisson counts from a uniform `u` (inverse transform, means up to 40) or a normal `z`
    (normal approximation beyond)."""
    lam = np.broadcast_to(np.asarray(mean, dtype=np.float64), u.shape)
    k = np.zeros(u.shape, np.float64)
    small = lam <= 40.0
    if small.any():
        ls, us = lam[small], u[small]
        p = np.exp(-ls)
        cdf = p.copy()
        ks = np.zeros(us.shape, np.float64)
        for step in range(1, 120):
            more = us > cdf
            if not more.any():
                break
            ks += more
            p = p * ls / step
            cdf = cdf + p
        k[small] = ks
    if (~small).any():
        big = lam[~small]
        k[~small] = np.maximum(np.round(big + np.sqrt(big) * z[~small]), 0)
    return k
