"""Per-key call rate limits: a token bucket per key in each API process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Allows bursts up to one second's worth of calls, then `rate` calls per second."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._clock = clock
        # lookups take on the event loop, the other endpoints' key check in the thread pool
        self._lock = threading.Lock()

    def take(self, key_id: str, rate: int) -> float:
        """0 when the call may go ahead, else the seconds until it may (for Retry-After)."""
        with self._lock:
            return self._take(key_id, rate)

    def _take(self, key_id: str, rate: int) -> float:
        now = self._clock()
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = _Bucket(float(rate), now)
        bucket.tokens = min(float(rate), bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate
