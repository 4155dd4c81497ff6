"""The answerers a server keeps ready, one per decoding choice clients ask for: the model's own,
and up to ``size`` others, the oldest forgotten first. Used from one asyncio event loop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from qa_seq2seq.decoding.answerer_base import AnswererBase


class AnswererCache:
    """``base`` under key ``""``, and the answerers ``make(search, options)`` gives for others."""

    def __init__(self, base: AnswererBase, size: int = 64):
        self.base, self.size = base, size
        self.answerers: dict[str, AnswererBase] = {}

    async def get(self, key: str, search: str | None, options: dict[str, Any],
                  make: Callable[[str | None, dict[str, Any]], Awaitable[AnswererBase]]) -> AnswererBase:
        """The answerer for ``key`` (a decode object as canonical JSON), made now if new."""
        if not key:
            return self.base
        if key not in self.answerers:
            answerer = await make(search, options)
            self.answerers[key] = answerer
            if len(self.answerers) > self.size:
                del self.answerers[next(iter(self.answerers))]
        return self.answerers[key]
