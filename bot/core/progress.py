"""Progress of long start-up work, for the log or the terminal."""

import time
from collections.abc import Callable


class Progress:
    """Says how far long work has got every few seconds; work that ends sooner says nothing.

    Called as (phase, done, total), the shape `bot.core.corpus.ProgressFn` describes.
    """

    def __init__(self, say: Callable[[str], None], every_s: float = 2.0) -> None:
        self._say = say
        self._every_s = every_s
        self._next = time.monotonic() + every_s

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self._every_s
            self._say(f"{phase}: {done:,} of {total:,} ({done / total:.0%})")
