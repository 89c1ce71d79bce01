"""One small cache for what is costly to build and keyed by content.

A knowledge base is keyed by its folders' files; a BM25 index, a term matcher or a labeler by the knowledge
fingerprint.

The oldest key is dropped past ``size``, so a long session that loads many knowledge folders stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class Memo(Generic[V]):
    """Built values by key, at most ``size`` of them (first in, first out)."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._values: dict[Hashable, V] = {}

    def get(self, key: Hashable, make: Callable[[], V]) -> V:
        """The value of ``key``, made by ``make()`` the first time."""
        if key not in self._values:
            value = make()
            if len(self._values) >= self.size:
                self._values.pop(next(iter(self._values)))
            self._values[key] = value
        return self._values[key]

    def clear(self) -> None:
        """Forget every value."""
        self._values.clear()
