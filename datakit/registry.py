"""One small registry type for every plug-in kind: sources, teachers, checks, exporters.

A registry maps a name to an object. Built-in members live in modules that register themselves when imported;
the registry imports them on first lookup, so ``import datakit`` stays light and a user's plug-in registered the
same way sits beside them. An unknown name is an :class:`~datakit.errors.UnknownFormat` listing the known ones.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from datakit.errors import UnknownFormat

T = TypeVar("T")


class Registry(Generic[T]):
    """Named members of one kind (``what`` names the kind in messages, e.g. "source format")."""

    def __init__(self, what: str, builtin: tuple[str, ...] = ()) -> None:
        self.what = what
        self._builtin = builtin  # modules whose import registers the built-in members
        self._loaded = False
        self._members: dict[str, T] = {}

    def load(self) -> None:
        """Import the built-in members' modules (once)."""
        self._load()

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._builtin:
                importlib.import_module(module)

    def add(self, name: str, member: T) -> T:
        """Register ``member`` under ``name`` (a later registration replaces an earlier one)."""
        self._members[name] = member
        return member

    def remove(self, name: str) -> None:
        """Forget the member called ``name``, if any (a plug-in unloaded, a test cleaning up)."""
        self._members.pop(name, None)

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def deco(member: T) -> T:
            return self.add(name, member)

        return deco

    def get(self, name: str) -> T:
        """The member called ``name``; an error listing the known names otherwise."""
        self._load()
        if name not in self._members:
            raise UnknownFormat(f"unknown {self.what} {name!r}", hint=f"choose one of: {', '.join(self.names())}")
        return self._members[name]

    def names(self) -> list[str]:
        """Known names, sorted."""
        self._load()
        return sorted(self._members)

    def items(self) -> list[tuple[str, T]]:
        """(name, member) pairs in registration order."""
        self._load()
        return list(self._members.items())

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._members

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(list(self._members))

    def __len__(self) -> int:
        self._load()
        return len(self._members)

    def values(self) -> list[T]:
        """Members in registration order."""
        self._load()
        return list(self._members.values())
