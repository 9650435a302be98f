"""One provider's gate, per process: its rate limit and its hold.

The rate is a token bucket (``daemon.delivery.pacing.TokenBucket``) filling at 95 % of the
configured rate and banking one call, so no second of wall-clock time sees more calls than
the rate. ``try_take`` never waits: the pipeline asks inline only when a call is free *now*;
the deferred runner, which may wait, asks ``wait`` how long.

A hold is set when the provider said stop — a 429's ``Retry-After``, or a timeout, a 5xx or
a refused connection (then ``hold_after_failure`` backs off with full jitter, doubling with
each failure in a row) — and no call is made until it ends; the first answer clears the
count. Replicas each have their own gate: give each ``rate`` divided by their number.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from daemon.delivery.pacing import HEADROOM, TokenBucket


class Gate:
    """``rate`` calls per second and a hold; thread-safe (the worker and the runner share it)."""

    def __init__(self, rate: float, *, base: float = 1.0, cap: float = 300.0,
                 clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None):
        self.rate = rate
        self.bucket = TokenBucket(rate * HEADROOM, 1.0, clock=clock)
        self.clock = clock
        self.base = base
        self.cap = cap
        self.rng = rng or random.Random()
        self.held_until = 0.0
        self.failures = 0
        self._lock = threading.Lock()

    def held_for(self) -> float:
        """Seconds the hold has left (0: not held)."""
        return max(0.0, self.held_until - self.clock())

    def try_take(self) -> bool:
        """Take a call if one is free right now and the provider is not held."""
        with self._lock:
            if self.held_until > self.clock() or self.bucket.wait_for(1) > 0:
                return False
            self.bucket.take(1)
            return True

    def wait(self) -> float:
        """Seconds until a call would be free (the hold included)."""
        with self._lock:
            return max(self.held_until - self.clock(), self.bucket.wait_for(1), 0.0)

    def hold(self, seconds: float) -> None:
        """No calls for ``seconds`` (a longer hold already set stays)."""
        with self._lock:
            self.held_until = max(self.held_until, self.clock() + max(0.0, seconds))

    def hold_after_failure(self) -> float:
        """A failure without a ``Retry-After``: hold for a random time in
        ``[base·2^(n-1)/2, base·2^(n-1)]`` (capped) for the n-th failure in a row; returns it."""
        with self._lock:
            self.failures += 1
            ceiling = min(self.cap, self.base * 2 ** (self.failures - 1))
        seconds = self.rng.uniform(ceiling / 2, ceiling)
        self.hold(seconds)
        return seconds

    def answered(self) -> None:
        """The provider answered: the failures in a row start again from none."""
        with self._lock:
            self.failures = 0
