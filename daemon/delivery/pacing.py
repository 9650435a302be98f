"""Pacing outbound calls: a token bucket per rate limit, so a burst waits its turn.

The dispatcher asks a notifier's ``Pacer`` for the calls an action will make (its
``cost``) right before calling it, and sleeps for what the pacer says — so a burst of a
thousand leads is spread over time instead of being answered 429 by the CRM.

Each bucket fills at 95 % of the documented rate. The CRMs count calls in a *sliding*
window, where a burst on top of the full rate would overrun it, so a bucket holds only
half of the remaining 5 % (at least one call): enough to catch up after a slow database
write or a GC pause, while any window sees at most 97.5 % of the limit plus one call, the
rest absorbing network jitter between our clock and theirs.

Pacing is per process (one ``Pacer`` per notifier per ``Dispatcher``, shared by its
threads). Replicas sharing one CRM key each pace at the full rate: divide ``rate_limit``
by the number of replicas.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping

from notifiers.base import RateLimit

#: the share of the documented rate the buckets fill at
HEADROOM = 0.95


class TokenBucket:
    """``rate`` tokens per second, up to ``capacity``. A taker may run the bucket into
    debt and waits until the debt is paid, so takers are served in order and a cost
    larger than the capacity is simply spread out."""

    def __init__(self, rate: float, capacity: float = 1.0, *,
                 clock: Callable[[], float] = time.monotonic):
        if rate <= 0:
            raise ValueError("a token bucket needs a rate above 0")
        self.rate = rate
        self.capacity = capacity
        self.clock = clock
        self.tokens = capacity
        self.stamp = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, n: float) -> float:
        """Seconds until ``n`` tokens are there (0: now); what ``take(n)`` would return."""
        self._refill()
        return max(0.0, (n - self.tokens) / self.rate)

    def take(self, n: float) -> float:
        """Take ``n`` tokens; returns how long the taker must wait before its call."""
        self._refill()
        self.tokens -= n
        return max(0.0, -self.tokens / self.rate)


def capacity(limit: RateLimit, headroom: float = HEADROOM) -> float:
    """How many calls a bucket may bank: half the headroom of one window, at least one."""
    return float(max(1, math.floor(limit.requests * (1 - headroom) / 2)))


class Pacer:
    """The buckets of one notifier, by name (``requests``, ``search``). Thread-safe."""

    def __init__(self, limits: Mapping[str, RateLimit], *, headroom: float = HEADROOM,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.buckets = {name: TokenBucket(limit.rate * headroom, capacity(limit, headroom), clock=clock)
                        for name, limit in limits.items()}
        self.sleep = sleep
        self._lock = threading.Lock()

    def reserve(self, cost: Mapping[str, int], max_wait: float = math.inf) -> float | None:
        """Reserve ``cost`` (calls per bucket) and return the seconds to wait before making
        them; ``None`` (nothing reserved) when that wait would exceed ``max_wait``."""
        wanted = {name: n for name, n in cost.items() if n > 0 and name in self.buckets}
        with self._lock:
            # the debt ahead of this taker, plus its own calls beyond what the bucket holds
            if max((self.buckets[b].wait_for(n) for b, n in wanted.items()), default=0.0) > max_wait:
                return None
            return max((self.buckets[b].take(n) for b, n in wanted.items()), default=0.0)

    def acquire(self, cost: Mapping[str, int], max_wait: float = math.inf) -> bool:
        """Wait until ``cost`` may be spent; False (without waiting) if that is beyond ``max_wait``."""
        wait = self.reserve(cost, max_wait)
        if wait is None:
            return False
        if wait > 0:
            self.sleep(wait)
        return True

    def next_free(self, cost: Mapping[str, int]) -> float:
        """Seconds until ``cost`` could be spent without waiting."""
        with self._lock:
            return max((self.buckets[b].wait_for(n) for b, n in cost.items() if b in self.buckets),
                       default=0.0)
