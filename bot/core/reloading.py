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
    def __init__(
        self,
        build: Callable[[], T],
        swap: Callable[[T], None],
        expected_errors: tuple[type[Exception], ...],
    ) -> None:
        self._build, self._swap, self._expected = build, swap, expected_errors
        self._wanted = 0  # requests so far
        self._done = 0  # requests answered (by a swap, or by a build that failed)
        self._task: asyncio.Task | None = None
        self.idle = asyncio.Event()
        self.idle.set()

    def request(self) -> None:
        """Ask for a reload; returns at once (safe from a signal handler)."""
        self._wanted += 1
        self.idle.clear()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self._done < self._wanted:
            target = self._wanted
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
                continue
            if self._wanted != target:
                log.info("a newer reload was requested meanwhile; building again")
                continue
            self._swap(result)
            self._done = target
        self.idle.set()
