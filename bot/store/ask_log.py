"""The record of questions and votes the maintainer's report reads: questions written in
batches every FLUSH_EVERY_S and purged after the retention period, and the keys votes are
stored under.

Only what the report needs is kept: the question, the passages shown, the time, and for
a vote a key made from the member and the answer with a secret (derived from the bot's
token, which the database never holds), so the database alone cannot be turned back into
anyone's Discord id, nor link one member's votes across answers.
"""

import asyncio
import datetime as dt
import hashlib
import hmac
import logging

from bot.store import AskRecord, Store, StoreUnavailable

log = logging.getLogger("lookback")

FLUSH_EVERY_S = 2.0  # questions are written in batches, not a disk sync per /ask
PURGE_EVERY_S = 6 * 3600.0
PENDING_MAX = 10_000  # questions held while the store is unreachable


def feedback_secret(token: str) -> bytes:
    return hashlib.sha256(b"lookback feedback key\0" + token.encode()).digest()


def member_key(secret: bytes, ask_id: int, user_id: int) -> str:
    """One key per member and answer: one vote each, changeable, and no way back to the id."""
    message = f"{ask_id}:{user_id}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


class AskLog:
    """Questions asked, kept for the report and written every FLUSH_EVERY_S."""

    def __init__(self, store: Store, days: int) -> None:
        self.store, self.days = store, days
        self._pending: list[AskRecord] = []

    def add(self, record: AskRecord) -> None:
        if self.days:
            self._pending.append(record)
            del self._pending[:-PENDING_MAX]

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            await self.store.record_asks(batch)
        except StoreUnavailable as exc:
            log.warning("could not record %d questions yet: %s", len(batch), exc)
            self._pending[:0] = batch
            del self._pending[:-PENDING_MAX]

    async def run(self) -> None:
        """Write batches, and purge what is older than the retention period."""
        if not self.days:
            return
        last_purge = -PURGE_EVERY_S
        loop = asyncio.get_running_loop()
        while True:
            await self.flush()
            if loop.time() - last_purge >= PURGE_EVERY_S:
                last_purge = loop.time()
                cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=self.days)
                try:
                    purged = await self.store.purge(cutoff)
                    if purged:
                        log.info(
                            "purged %d questions and votes older than %d days", purged, self.days
                        )
                except StoreUnavailable as exc:
                    log.warning("could not purge old feedback: %s", exc)
            await asyncio.sleep(FLUSH_EVERY_S)
