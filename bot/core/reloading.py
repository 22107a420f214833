"""Corpus reloads requested while the bot serves: one build at a time, the latest wins.

Requests (SIGHUP, a notification from `python -m bot reload`) can arrive faster than a
large corpus builds. Each request only raises a counter; one task builds at a time,
off the event loop, and swaps the result in only if no newer request came while it
was building. Otherwise a slow build of an older corpus could finish last and be
served after a newer, faster one (a reverted edit read from the cache).
"""

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger("lookback")

T = TypeVar("T")


class Reloader(Generic[T]):
    """`settled(tag, error)` is told the tag of the latest request a build answered, and
    the error if it failed (the previous corpus then still serves)."""

    def __init__(
        self,
        build: Callable[[], T],
        swap: Callable[[T], None],
        expected_errors: tuple[type[Exception], ...],
        settled: Callable[[int, Exception | None], object] = lambda tag, error: None,
    ) -> None:
        self._build, self._swap, self._expected = build, swap, expected_errors
        self._settled = settled
        self._wanted = 0  # requests so far
        self._done = 0  # requests answered (by a swap, or by a build that failed)
        self._tag = 0  # the latest request's tag (a cluster's reload generation)
        self._task: asyncio.Task | None = None

    def request(self, tag: int = 0) -> None:
        """Ask for a reload; returns at once (safe from a signal handler)."""
        self._wanted += 1
        self._tag = max(self._tag, tag)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self._done < self._wanted:
            target, tag = self._wanted, self._tag
            log.info("reloading the corpus")
            try:
                result = await asyncio.to_thread(self._build)
            except Exception as exc:
                unexpected = not isinstance(exc, self._expected)
                log.error(
                    "corpus reload failed, still serving the previous corpus: %s",
                    exc,
                    exc_info=unexpected,
                )
                self._done = target
                self._settled(tag, exc)
                continue
            if self._wanted != target:
                log.info("a newer reload was requested meanwhile; building again")
                continue
            self._swap(result)
            self._done = target
            self._settled(tag, None)
