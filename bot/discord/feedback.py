"""👍/👎 under every answer (how votes are keyed and kept: bot.store.ask_log)."""

import datetime as dt
import logging
import re
from typing import TYPE_CHECKING

import discord

from bot.discord.replies import reply
from bot.store import StoreUnavailable, Vote
from bot.store.ask_log import member_key

if TYPE_CHECKING:
    from bot.discord.client import LookBackBot

log = logging.getLogger("lookback")

THANKS = {
    1: "Thanks! Noted 👍.",
    -1: "Thanks, noted 👎. The maintainer reads which answers were voted down and "
    "improves the sources.",
}
VOTE_FAILED = "I couldn't save your vote just now. Please try again in a moment."


class VoteButton(
    discord.ui.DynamicItem[discord.ui.Button], template=r"vote:(?P<ask>[0-9]+):(?P<vote>up|down)"
):
    """👍 or 👎 under an answer; works after a restart (the answer is in the custom_id)."""

    def __init__(self, ask_id: int, vote: int) -> None:
        name = "up" if vote > 0 else "down"
        button = discord.ui.Button(
            emoji="👍" if vote > 0 else "👎",
            style=discord.ButtonStyle.secondary,
            custom_id=f"vote:{ask_id}:{name}",
        )
        super().__init__(button)
        self.ask_id, self.vote = ask_id, vote

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str]
    ) -> "VoteButton":
        return cls(int(match["ask"]), 1 if match["vote"] == "up" else -1)

    async def callback(self, interaction: "discord.Interaction[LookBackBot]") -> None:
        bot = interaction.client
        # A locked or distant database may make the write wait: acknowledge first.
        await interaction.response.defer(ephemeral=True, thinking=True)
        key = member_key(bot.feedback_secret, self.ask_id, interaction.user.id)
        try:
            await bot.store.record_vote(Vote(self.ask_id, key, self.vote, dt.datetime.now(dt.UTC)))
        except StoreUnavailable as exc:
            log.warning("could not save a vote: %s", exc)
            await reply(interaction, VOTE_FAILED)
            return
        await reply(interaction, THANKS[self.vote])
