"""Per-member rate limits for /ask."""

from collections import OrderedDict
from collections.abc import Hashable

import discord
from discord import app_commands


class MemberCooldowns:
    """At most `rate` uses per `per` seconds per member, with discord.py's Cooldown buckets.

    `app_commands.checks.cooldown` scans every member's bucket on every use to drop
    the idle ones; with 2,000 members asking within 30 s that was a tenth of each
    /ask's CPU. Here buckets are kept in order of last use, so idle ones are dropped
    from the front. (Dropping a bucket idle for `per` changes nothing: its window
    has passed, so it would have reset anyway.)
    """

    def __init__(self, rate: int, per: float) -> None:
        self.rate, self.per = rate, per
        self._buckets: OrderedDict[Hashable, tuple[float, app_commands.Cooldown]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def use(self, member_id: Hashable, now: float) -> float | None:
        """Count one use at `now` (epoch seconds); the seconds to wait if over the rate."""
        while self._buckets:
            last_used, _ = next(iter(self._buckets.values()))
            if now <= last_used + self.per:
                break
            self._buckets.popitem(last=False)
        entry = self._buckets.pop(member_id, None)
        bucket = entry[1] if entry else app_commands.Cooldown(self.rate, self.per)
        self._buckets[member_id] = (now, bucket)
        return bucket.update_rate_limit(now)

    def check(self, interaction: discord.Interaction) -> bool:
        """An app command check: CommandOnCooldown, as discord.py's own cooldown raises."""
        # By server (or DM) and member: every interaction of one key reaches one shard, so
        # a process's buckets are right even when shards run in several processes.
        key = (interaction.guild_id or 0, interaction.user.id)
        retry_after = self.use(key, interaction.created_at.timestamp())
        if retry_after is not None:
            raise app_commands.CommandOnCooldown(
                app_commands.Cooldown(self.rate, self.per), retry_after
            )
        return True
