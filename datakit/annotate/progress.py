"""Counters of a teacher run and the progress bar that shows them.

The engine only bumps integers in a :class:`Tally`; a task redraws the bar a few times per second, so a fast
endpoint is never slowed by drawing, and a throttled one still shows that it is alive and why it waits
(bespokelabsai/curator and argilla-io/distilabel issues).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from datakit.progress import starting_bar

REFRESH_S = 0.25


@dataclass
class Tally:
    """What a run has done so far."""

    total: int
    done: int = 0
    cached: int = 0
    failed: int = 0
    http_requests: int = 0  # answers received in this run (re-asks included)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    status: str = ""  # e.g. the Batch API state
    started: float = field(default_factory=time.monotonic)

    def rate(self) -> float:
        """Answers per second since the start."""
        elapsed = time.monotonic() - self.started
        return self.http_requests / elapsed if elapsed > 0 else 0.0

    def summary(self, cooling_s: float = 0.0) -> str:
        """One line: counts, speed, tokens, cost, and any cooldown."""
        parts = [
            f"cached {self.cached}",
            f"failed {self.failed}",
            f"{self.rate():.1f} req/s",
            f"tokens {self.input_tokens:,} in / {self.output_tokens:,} out",
            f"${self.cost_usd:,.2f}",
        ]
        if cooling_s > 0:
            parts.append(f"rate-limited, waiting {cooling_s:.0f}s")
        if self.status:
            parts.append(self.status)
        return " · ".join(parts)


class ProgressView:
    """A rich progress bar over a :class:`Tally`, redrawn by :meth:`run` (an asyncio task)."""

    def __init__(self, tally: Tally, *, label: str, limiter: Any = None, enabled: bool = True) -> None:
        self.tally = tally
        self.limiter = limiter
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None
        if enabled:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=Console(stderr=True),
                auto_refresh=False,  # redrawn from run(), no extra thread competing for the GIL
                transient=False,
            )
            self._task = self._progress.add_task(label, total=tally.total, info="")

    def __enter__(self) -> ProgressView:
        if self._progress is not None:
            starting_bar()
            self._progress.start()
            self.draw()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self.draw()
            self._progress.stop()

    def draw(self) -> None:
        """Redraw now."""
        if self._progress is None:
            return
        cooling = self.limiter.cooling_s() if self.limiter is not None else 0.0
        info = self.tally.summary(cooling)
        self._progress.update(self._task, completed=self.tally.done, info=info, refresh=True)

    async def run(self) -> None:
        """Redraw every ``REFRESH_S`` until cancelled."""
        if self._progress is None:
            return
        while True:
            await asyncio.sleep(REFRESH_S)
            self.draw()
