"""Keeping an endpoint busy within its limits: requests and tokens per minute, and a shared 429 cooldown.

Concurrency itself is bounded by the number of workers (``max_concurrency``); this module decides *when* a
worker may send. Providers limit in different ways (curator, distilabel issues): vLLM and many hosts by
concurrency alone, OpenAI by requests and tokens per minute, some by requests per second. All three can be set together.

After a 429 every worker waits (the :class:`Limiter` gate), not only the one that was refused: retrying each
request on its own burns retries while the limit is still exhausted (curator#205, distilabel#1014).
"""

from __future__ import annotations

import asyncio
import random
import time


class TokenBucket:
    """Refills at ``per_minute / 60`` per second up to one second's worth; a take may run into debt.

    Allowing debt lets one request larger than the bucket go (a 30k-token prompt under a 10k TPM limit would
    otherwise wait forever); the requests after it wait until the debt is repaid, so the average rate holds.
    """

    def __init__(self, per_minute: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self.stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_s(self, amount: float) -> float:
        """Seconds until ``amount`` may be taken (0 when it may be now)."""
        self._refill()
        need = min(amount, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate

    def take(self, amount: float) -> None:
        """Take ``amount`` (possibly into debt)."""
        self._refill()
        self.level -= amount

    def give_back(self, amount: float) -> None:
        """Return tokens taken on an estimate that turned out too high (or take more when negative)."""
        self._refill()
        self.level = min(self.capacity, self.level + amount)


class Limiter:
    """The gate every request passes before it is sent: cooldown after 429, then RPM and TPM buckets."""

    def __init__(
        self, *, requests_per_minute: int | None = None, tokens_per_minute: int | None = None
    ) -> None:
        self.requests = TokenBucket(requests_per_minute) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute) if tokens_per_minute else None
        self.paused_until = 0.0  # time.monotonic() before which nobody sends

    def cooldown(self, seconds: float) -> None:
        """Stop every worker from sending for ``seconds`` (extends, never shortens, a running cooldown)."""
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)

    def cooling_s(self) -> float:
        """Seconds left in the current cooldown."""
        return max(0.0, self.paused_until - time.monotonic())

    async def admit(self, tokens: int) -> None:
        """Wait until a request of about ``tokens`` tokens may be sent, then count it."""
        while True:
            wait = self.cooling_s()
            if wait > 0:
                # A small spread so the workers do not all fire in the same millisecond when it ends.
                await asyncio.sleep(wait + random.uniform(0, min(0.25, wait / 10)))
                continue
            wait = max(
                self.requests.wait_s(1) if self.requests else 0.0,
                self.tokens.wait_s(tokens) if self.tokens else 0.0,
            )
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        if self.requests:
            self.requests.take(1)
        if self.tokens:
            self.tokens.take(tokens)

    def settle(self, estimated: int, actual: int) -> None:
        """Correct the token bucket once the real usage is known (0 when the request used nothing)."""
        if self.tokens:
            self.tokens.give_back(estimated - actual)


def backoff_s(attempt: int, *, initial: float, maximum: float) -> float:
    """Exponential backoff with jitter: about ``initial·2^attempt``, drawn from its upper half, capped."""
    ceiling = min(maximum, initial * (2**attempt))
    return random.uniform(ceiling / 2, ceiling)
