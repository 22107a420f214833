"""What a film server expects of the bot, as Discord drives it through the loopback fake:
autocomplete, "Ask about this", /help, DMs, spoiler channels, feedback and the report."""

import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core import analysis
from bot.core.suggestions import Suggester
from tests.bot_process import BotProcess, run_bot
from tests.fake_discord import MANAGE_GUILD, MEMBER_PERMISSIONS, SPOILER_CHANNEL_ID, Channel
from tests.markup import spoiler_segments
from tests.test_discord import SPOILER_WORDS, assert_nothing_spoils

ADMIN = MEMBER_PERMISSIONS | MANAGE_GUILD  # a member who may manage the server


@pytest.mark.parametrize("typed", ["", "who", "how long", "kyomoto", "kyomto", "alt"])
async def test_autocomplete_suggests_whole_questions_within_discords_limits(fake, bot, typed):
    reply = await fake.ask(fake.slash("ask", 700, focused="question", question=typed))
    assert reply.type == 8 and 1 <= len(reply.choices) <= 25  # the fake checks the limits
    if typed:
        assert reply.choices[0] == typed  # the typed text itself first
    assert all(len(c.split()) >= 2 or c == typed for c in reply.choices)  # questions, not words


async def test_autocomplete_offers_spoiler_questions_only_to_those_who_may_see_them(fake, bot):
    typed = "what is the alternate"
    off = await fake.ask(fake.slash("ask", 701, focused="question", question=typed))
    assert all("timeline" not in c for c in off.choices[1:])
    await fake.answer(fake.slash("spoilers on", 701))
    on = await fake.ask(fake.slash("ask", 701, focused="question", question=typed))
    assert any("alternate timeline" in c for c in on.choices)


def _suggester(retriever) -> Suggester:
    return Suggester(retriever.corpus, retriever.mentions_spoilers)


def _words_only_spoilers_use(corpus) -> set[str]:
    """Worked out here from the passages' texts, not with the bot's own check."""
    spoiler = {t for c in corpus.chunks if c.is_spoiler for t in analysis.terms(c.text)}
    other = {t for c in corpus.chunks if not c.is_spoiler for t in analysis.terms(c.text)}
    return spoiler - other


@settings(max_examples=300, deadline=None)
@given(typed=st.text(alphabet="abcdefghijklmnopqrstuvwxyz ?'", max_size=40))
def test_no_suggestion_for_a_member_without_spoilers_could_spoil(retriever, typed):
    suggestions = _suggester(retriever).suggest(typed, spoilers=False)
    assert len(suggestions) <= 25 and all(1 <= len(s) <= 100 for s in suggestions)
    typed_itself = " ".join(typed.split())
    spoiler_words = _words_only_spoilers_use(retriever.corpus)
    for suggestion in suggestions:
        if suggestion != typed_itself:
            assert not retriever.corpus.spoiler_group(suggestion), suggestion
            assert not spoiler_words & set(analysis.terms(suggestion)), suggestion


def test_spoiler_suggestions_exist_for_those_who_opted_in(retriever):
    everything = _suggester(retriever).suggest("alternate timeline", spoilers=True)
    assert any(retriever.mentions_spoilers(s) for s in everything[1:])


async def test_ask_about_this_answers_the_message_privately(fake, bot):
    command = fake.message_command("Ask about this", "<@42> who composed the music?? https://x.y")
    reply = await fake.ask(command)
    assert reply.ephemeral and "Nakamura" in reply.text
    assert "**Q:** who composed the music??" in reply.text  # mention and link left out
    assert_nothing_spoils(reply)


async def test_ask_about_this_on_a_long_message_says_it_was_cut(fake, bot):
    long = "why does fujino stop drawing manga for a while " * 12
    reply = await fake.ask(fake.message_command("Ask about this", long))
    assert reply.ephemeral and "cut to its first 300 characters" in reply.text


async def test_ask_about_this_on_a_message_of_only_spoilers_and_links(fake, bot):
    reply = await fake.ask(fake.message_command("Ask about this", "||kyomoto dies|| https://a.b"))
    assert reply.ephemeral and "no words I can ask about" in reply.text


async def test_help_is_private_and_explains_commands_spoilers_and_what_is_kept(fake, bot):
    reply = await fake.ask(fake.slash("help"))
    assert reply.ephemeral
    for needed in ("/ask", "/spoilers on", "/sources", "Ask about this", "👎", "90 days"):
        assert needed in reply.text, needed


@pytest.fixture
async def global_bot(fake, tmp_path):
    """The bot with no DISCORD_GUILD_ID: commands synced globally, so they work in DMs."""
    async for process in run_bot(BotProcess(fake, tmp_path, env={"DISCORD_GUILD_ID": ""})):
        yield process


async def test_ask_help_and_spoilers_work_in_a_dm_with_global_commands(fake, global_bot):
    commands = {c["name"]: c for c in fake.synced["global"]}
    assert commands["config"]["contexts"] == [0]  # server only
    for name in ("ask", "help", "spoilers", "sources", "Ask about this"):
        assert 1 in commands[name]["contexts"], name  # DMs too
    reply = await fake.ask(fake.slash("ask", 702, dm=True, question="who directed it"))
    assert "Oshiyama" in reply.text and not reply.ephemeral
    assert (await fake.ask(fake.slash("help", 702, dm=True))).ephemeral
    await fake.answer(fake.slash("spoilers on", 702, dm=True))
    spoiled = await fake.ask(fake.slash("ask", 702, dm=True, question="how did kyomoto die"))
    assert any("||" in f["value"] for f in spoiled.embeds[0]["fields"])


async def test_config_is_for_admins_and_checked_by_the_bot_too(fake, bot):
    [config] = [c for c in fake.synced["1200000000000000001"] if c["name"] == "config"]
    assert int(config["default_member_permissions"]) == MANAGE_GUILD
    # Discord lets admins loosen default_permissions: the bot checks for itself.
    attempt = fake.slash(
        "config spoiler-channel", 703, channel=Channel(SPOILER_CHANNEL_ID), enabled=True
    )
    refused = await fake.ask(attempt)
    assert refused.ephemeral and "manage this server" in refused.text
    shown = await fake.answer(fake.slash("config show", 704, permissions=ADMIN))
    assert "none" in shown.text  # nothing was changed


async def test_a_spoiler_channel_shows_spoilers_to_everyone_tagged_and_only_there(fake, bot):
    member, question = 705, "how did kyomoto die"
    set_it = fake.slash(
        "config spoiler-channel", 706, permissions=ADMIN,
        channel=Channel(SPOILER_CHANNEL_ID), enabled=True,
    )  # fmt: skip
    confirmed = await fake.answer(set_it)
    assert confirmed.ephemeral and f"<#{SPOILER_CHANNEL_ID}>" in confirmed.text
    there = await fake.ask(
        fake.slash("ask", member, channel_id=SPOILER_CHANNEL_ID, question=question)
    )
    assert not there.ephemeral and "this is a spoiler channel" in there.text
    values = [f["value"] for f in there.embeds[0]["fields"]]
    assert any(spoiler_segments(v)[1] for v in values)  # spoiler passages, tagged
    assert_nothing_spoils(there)
    elsewhere = await fake.ask(fake.slash("ask", member, question=question))
    assert not any(w in elsewhere.text.lower() for w in SPOILER_WORDS)
    assert "spoiler channel" not in elsewhere.text
    await bot.stop()
    await bot.start()  # the setting is kept
    shown = await fake.answer(fake.slash("config show", 706, permissions=ADMIN))
    assert f"<#{SPOILER_CHANNEL_ID}>" in shown.text


async def test_votes_count_once_per_member_and_the_report_lists_them(fake, bot, tmp_path):
    question = "who voices fujino"
    answer = await fake.ask(fake.slash("ask", 707, question=question))
    assert answer.buttons[:2] == ["👍", "👎"]
    for _ in range(2):  # the same member twice: one vote
        thanks = await fake.answer(fake.click(answer, "👎", 707))
        assert thanks.ephemeral and "Thanks" in thanks.text
    await fake.answer(fake.click(answer, "👍", 708))
    await fake.ask(fake.slash("ask", 709, question="how tall is mount everest"))
    await bot.stop()  # writes the questions still held
    env = {"DATABASE_PATH": str(tmp_path / "prefs.sqlite3"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "report", "--json"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["votes"] == {"up": 1, "down": 1}
    [voted] = report["voted_down"]
    assert voted["question"] == question and voted["down"] == 1 and voted["passages"]
    assert "how tall is mount everest" in [q["question"] for q in report["top_unanswered"]]
    text = subprocess.run(
        [sys.executable, "-m", "bot", "report"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    ).stdout  # fmt: skip
    assert question in text and "how tall is mount everest" in text and "¶" in text
    await bot.start()


async def test_the_stored_votes_hold_no_discord_id(fake, bot, tmp_path):
    answer = await fake.ask(fake.slash("ask", 123456789, question="who directed it"))
    await fake.answer(fake.click(answer, "👎", 123456789))
    await bot.stop()
    data = b"".join(p.read_bytes() for p in tmp_path.glob("prefs.sqlite3*"))
    assert b"123456789" not in data and (123456789).to_bytes(4, "big") not in data
    await bot.start()
