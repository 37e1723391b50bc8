"""Action and observation space descriptions (static Python objects, never traced)."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Discrete:
    """`n` actions, numbered 0 … n-1 (int32 scalars)."""

    n: int

    @property
    def shape(self) -> tuple[int, ...]:
        return ()

    @property
    def dtype(self):
        return np.int32


@dataclasses.dataclass(frozen=True)
class Box:
    """A real box `low ≤ x ≤ high` of the given shape (float32).

    Bounds are stored as tuples so the space stays hashable; `low`/`high`
    return them as arrays.
    """

    low_: tuple
    high_: tuple
    shape: tuple[int, ...]

    @classmethod
    def make(cls, low, high, shape) -> "Box":
        shape = tuple(int(s) for s in shape)
        low = np.broadcast_to(np.asarray(low, np.float32), shape)
        high = np.broadcast_to(np.asarray(high, np.float32), shape)
        return cls(tuple(low.ravel().tolist()), tuple(high.ravel().tolist()), shape)

    @property
    def low(self) -> np.ndarray:
        return np.asarray(self.low_, np.float32).reshape(self.shape)

    @property
    def high(self) -> np.ndarray:
        return np.asarray(self.high_, np.float32).reshape(self.shape)

    @property
    def dtype(self):
        return np.float32

    def __repr__(self) -> str:  # keep long bounds out of error messages
        lo, hi = self.low, self.high
        if lo.size and np.all(lo == lo.flat[0]) and np.all(hi == hi.flat[0]):
            return f"Box(low={lo.flat[0]:g}, high={hi.flat[0]:g}, shape={self.shape})"
        return f"Box(shape={self.shape})"
