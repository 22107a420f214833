"""The bot as Discord drives it: the real `python -m bot` process against a loopback fake."""

import asyncio
import json
import signal
import subprocess
import sys
import time

import discord
import numpy as np
import pytest

from bot.config import DEFAULT_CORPUS
from bot.core.answer import Lookup
from bot.core.index_cache import cache_path, open_retriever
from bot.core.paging import AnswerPages
from bot.core.retrieval import SearchResult, View
from bot.discord.cooldowns import MemberCooldowns
from tests.bot_process import BotProcess, run_bot
from tests.conftest import entry
from tests.fake_discord import APP_ID, GUILD_ID, TOKEN
from tests.markup import spoiler_segments
from tests.sqlite_lock import hold_lock
from tests.test_index_cache import _forge

TWIST = "axe"  # a word only spoiler passages contain


async def test_bot_logs_in_and_syncs_its_commands_to_the_guild(fake, bot):
    names = {c["name"] for c in fake.synced[str(GUILD_ID)]}
    assert names == {"ask", "spoilers", "sources", "help", "config", "Ask about this"}
    spoilers = next(c for c in fake.synced[str(GUILD_ID)] if c["name"] == "spoilers")
    assert {o["name"] for o in spoilers["options"]} == {"on", "off", "status"}
    ask = next(c for c in fake.synced[str(GUILD_ID)] if c["name"] == "ask")
    question = next(o for o in ask["options"] if o["name"] == "question")
    assert question["max_length"] == 300 and question["required"]
    assert fake.identifies == 1
    assert "voice will NOT be supported" not in bot.log()  # it uses no voice


async def test_the_bot_subscribes_only_to_the_guild_events_it_uses(fake, bot):
    """Message, typing, reaction and voice events from a busy server would each be
    parsed on the loop that answers /ask; interactions arrive whatever the intents."""
    assert fake.intents == discord.Intents(guilds=True).value


async def test_a_plain_question_gets_a_cited_public_answer(fake, bot):
    reply = await fake.ask(fake.slash("ask", question="who composed the music?"))
    assert reply.type == 4 and not reply.ephemeral
    assert "Haruka Nakamura" in reply.text and "¶" in reply.text
    assert reply.data["allowed_mentions"] == {"parse": []}
    assert reply.latency_s < 3


async def test_the_bot_gives_the_same_answer_as_the_cli(fake, bot):
    question = "how long is the movie"
    reply = await fake.ask(fake.slash("ask", question=question))
    cli = subprocess.run(
        [sys.executable, "-m", "bot", "ask", question, "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    [expected] = json.loads(cli.stdout)["message"]["embeds"]
    [got] = reply.embeds
    for key in ("title", "description", "fields", "footer"):
        assert got.get(key) == expected.get(key), key


async def test_spoilers_are_withheld_until_the_member_opts_in(fake, bot):
    member = 777
    asked = fake.slash("ask", member, question="what happens to kyomoto")
    before = await fake.ask(asked)
    assert TWIST not in before.text.lower() and not before.ephemeral
    assert "spoiler" not in before.text.lower() and "🔒" not in before.text
    [notice] = await fake.followups(asked)  # what was withheld: to the asker alone
    assert notice.ephemeral and "withheld" in notice.text and "/spoilers on" in notice.text

    opted = await fake.answer(fake.slash("spoilers on", member))
    assert opted.ephemeral and "on" in opted.data["content"]

    after = await fake.ask(fake.slash("ask", member, question="what happens to kyomoto"))
    assert TWIST in after.text.lower()
    assert not after.ephemeral
    for field in after.embeds[0]["fields"]:
        outside, _ = spoiler_segments(field["value"])
        assert not any(TWIST in piece.lower() for piece in outside)

    other = await fake.ask(fake.slash("ask", member + 1, question="what happens to kyomoto"))
    assert TWIST not in other.text.lower()


async def test_spoiler_status_and_off_are_ephemeral_and_say_what_they_mean(fake, bot):
    status = await fake.ask(fake.slash("spoilers status", 9))
    assert status.ephemeral and "off" in status.data["content"]
    await fake.answer(fake.slash("spoilers on", 9))
    off = await fake.answer(fake.slash("spoilers off", 9))
    assert off.ephemeral and "withholds" in off.data["content"]
    assert "off" in (await fake.ask(fake.slash("spoilers status", 9))).data["content"]


async def test_opt_in_survives_a_restart_of_the_bot_process(fake, bot):
    await fake.answer(fake.slash("spoilers on", 4242))
    await bot.stop()
    await bot.start()
    reply = await fake.ask(fake.slash("ask", 4242, question="does kyomoto die"))
    assert TWIST in reply.text.lower() or "murder" in reply.text.lower()
    assert "withheld" not in reply.text


async def test_simultaneous_toggles_are_all_kept(fake, bot):
    members = range(1000, 1040)
    toggles = [fake.slash("spoilers on", m) for m in members]
    acks = [await fake.send(t) for t in toggles]
    await asyncio.wait_for(asyncio.gather(*acks), 20)
    replies = [(await fake.followups(t))[0] for t in toggles]
    assert all("**on**" in r.data["content"] and r.ephemeral for r in replies)
    statuses = [await fake.ask(fake.slash("spoilers status", m)) for m in members]
    assert all("**on**" in s.data["content"] for s in statuses)


async def test_asking_too_fast_hits_a_friendly_cooldown(fake, bot):
    replies = [await fake.ask(fake.slash("ask", 55, question="who directed it")) for _ in range(4)]
    assert not any(r.ephemeral for r in replies[:3])
    assert replies[3].ephemeral and "Try again in" in replies[3].data["content"]


async def test_a_member_who_waited_out_the_cooldown_can_ask_again(fake, bot):
    for _ in range(3):
        await fake.ask(fake.slash("ask", 56, question="who directed it"))
    assert (
        "Try again in" in (await fake.ask(fake.slash("ask", 56, question="who directed it"))).text
    )
    fake.clock_offset_s = 31  # interactions are dated by their ids, as Discord's are
    later = await fake.ask(fake.slash("ask", 56, question="who directed it"))
    assert not later.ephemeral and "Try again" not in later.text


def test_cooldown_allows_three_asks_then_says_how_long_to_wait():
    cooldowns = MemberCooldowns(3, 30.0)
    assert [cooldowns.use(1, 1000.0 + t) for t in (0, 1, 2)] == [None, None, None]
    assert cooldowns.use(1, 1010.0) == pytest.approx(20.0)
    assert cooldowns.use(2, 1010.0) is None  # members are counted apart
    assert cooldowns.use(1, 1031.0) is None


def test_cooldown_forgets_members_once_idle_for_a_whole_period():
    cooldowns = MemberCooldowns(3, 30.0)
    for member in range(1000):
        cooldowns.use(member, 1000.0 + member / 100)
    assert len(cooldowns) == 1000
    cooldowns.use(5000, 1035.0)  # members 0-499 last asked more than 30 s ago
    assert len(cooldowns) == 501


def test_answer_pages_keep_only_the_latest_answers():
    pages = AnswerPages(kept=2)
    nothing = View((), True, False)
    lookup = Lookup("q", SearchResult(nothing, nothing), "")
    for ask_id in (1, 2, 3):
        pages.add(ask_id, lookup, asker_id=7, shown=[])
    assert pages.get(1) is None
    assert pages.get(2) is not None and pages.get(3) is not None


async def test_an_off_topic_question_gets_an_ephemeral_i_dont_know(fake, bot):
    reply = await fake.ask(fake.slash("ask", question="how do i install python"))
    assert reply.ephemeral
    assert "I don't know" in reply.text and "director" in reply.text
    assert reply.embeds[0].get("fields") in (None, [])


async def test_mentions_and_spoiler_tags_in_a_question_cannot_ping_or_break_out(fake, bot):
    question = "@everyone <@123> <@&456> ||who|| directed **it**?"
    reply = await fake.ask(fake.slash("ask", question=question))
    assert reply.data["allowed_mentions"] == {"parse": []}
    echo = reply.embeds[0]["description"].split("\n")[0]
    outside, inside = spoiler_segments(echo)
    assert outside == ["**Q:** ", ""]  # the member's || tagged the whole echo, not a part
    assert len(inside) == 1 and "\\*\\*" in inside[0] and "\\|" not in echo


async def test_more_results_pages_to_the_asker_only(fake, bot):
    question = "fujino and kyomoto drawing manga together"
    first = await fake.ask(fake.slash("ask", 31, question=question))
    second = await fake.ask(fake.click(first, "More results", 31))
    assert second.ephemeral and second.embeds[0]["fields"]
    assert second.embeds[0]["fields"][0]["name"].startswith("4.")
    stranger = await fake.ask(fake.click(first, "More results", 32))
    assert stranger.ephemeral and "another member" in stranger.data["content"]


async def test_more_results_after_a_restart_tells_the_member_to_ask_again(fake, bot):
    first = await fake.ask(
        fake.slash("ask", 33, question="fujino and kyomoto drawing manga together")
    )
    await bot.stop()
    await bot.start()
    again = await fake.ask(fake.click(first, "More results", 33), timeout=5)
    assert again.ephemeral and "/ask" in again.data["content"]


async def test_sources_lists_every_document(fake, bot):
    reply = await fake.ask(fake.slash("sources"))
    names = [f["name"] for f in reply.embeds[0]["fields"]]
    assert len(names) == 5 and "Look Back - Ending Explained" in names


async def test_start_without_a_token_explains_how_to_get_one(fake, tmp_path):
    process = BotProcess(fake, tmp_path, env={"DISCORD_TOKEN": ""})
    await process.start(wait=False)
    assert await process.wait() == 2
    log = process.log()
    assert "No Discord bot token found" in log and ".env" in log
    assert "Traceback" not in log


async def test_a_rejected_token_gets_the_same_kind_of_message(fake, tmp_path):
    process = BotProcess(fake, tmp_path, env={"DISCORD_TOKEN": "wrong.token"})
    await process.start(wait=False)
    assert await process.wait() == 2
    log = process.log()
    assert "rejected the bot token" in log and "Traceback" not in log
    assert "wrong.token" not in log


async def test_a_broken_corpus_stops_start_up_with_the_file_named(fake, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "manifest.toml").write_text("[film\n")
    process = BotProcess(fake, tmp_path, env={"CORPUS_DIR": str(corpus)})
    await process.start(wait=False)
    assert await process.wait() == 2
    assert "manifest.toml is not valid TOML" in process.log()
    assert "Traceback" not in process.log()


async def test_a_locked_database_gets_a_friendly_retry_and_changes_nothing(fake, bot, tmp_path):
    holder = hold_lock(tmp_path / "prefs.sqlite3", 4)
    reply = await fake.answer(fake.slash("spoilers on", 66))
    assert reply.ephemeral and "nothing changed" in reply.data["content"]
    holder.wait(10)
    status = await fake.answer(fake.slash("spoilers status", 66))
    assert "**off**" in status.data["content"]


@pytest.mark.parametrize(
    ("question", "expect"),
    [
        ("🙂🙂🙂", "I don't know"),
        ("?!...", "I don't know"),
        ("ルックバック", "ルックバック"),
        ("who\u200b directed\u200d it\x07", "Oshiyama"),
        ("```\nwho composed the music\n```", "Nakamura"),
        ("> who composed the music", "Nakamura"),
        ("https://example.com/look||back who composed the music", "Nakamura"),
        ("<@&456> <#789> @here who directed it", "Oshiyama"),
    ],
)
async def test_odd_questions_get_an_answer_or_a_friendly_i_dont_know(fake, bot, question, expect):
    reply = await fake.ask(fake.slash("ask", question=question))
    assert expect in reply.text
    assert reply.data["allowed_mentions"] == {"parse": []}
    echo = reply.embeds[0].get("description", "").split("\n")[0]
    _, inside = spoiler_segments(echo)  # raises on an unclosed tag
    assert len(inside) == (0 if reply.ephemeral else 1)  # in public the whole echo is tagged


async def test_commands_keep_working_after_the_gateway_drops(fake, bot):
    await fake.ask(fake.slash("ask", question="who directed it"))
    await fake.drop_connection(4000)
    async with asyncio.timeout(20):
        while fake.resumes + fake.identifies < 2:
            await asyncio.sleep(0.05)
    reply = await fake.ask(fake.slash("ask", 2, question="who composed the music"))
    assert "Nakamura" in reply.text


async def test_a_burst_of_200_asks_from_50_members_is_answered_within_limits(fake, bot):
    asks = [fake.slash("ask", 5000 + n % 50, question="who directed it") for n in range(200)]
    futures = [await fake.send(a) for a in asks]
    replies = await asyncio.wait_for(asyncio.gather(*futures), 60)
    answered = [r for r in replies if not r.ephemeral]
    cooled = [r for r in replies if r.ephemeral]
    assert len(answered) == 50 * 3  # three asks per member per 30 s
    assert all("Try again in" in r.data["content"] for r in cooled) and len(cooled) == 50
    assert all(r.latency_s < 3 for r in replies)


@pytest.mark.skipif(sys.platform != "linux", reason="the kernel's receive time is Linux's")
async def test_a_reply_is_timed_when_it_reaches_the_fake_not_when_the_fake_reads_it(fake, bot):
    """The benchmark's latencies must not include the fake's own busy moments."""
    await fake.ask(fake.slash("ask", question="who directed it"))
    sent = await fake.send(fake.slash("ask", 2, question="who composed the music"))
    time.sleep(2.0)  # the fake's loop is stalled while the bot's reply arrives
    reply = await asyncio.wait_for(sent, 10)
    assert reply.latency_s < 2.0


async def wait_for_log(bot: BotProcess, text: str, count: int = 1, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while bot.log().count(text) < count:
            await asyncio.sleep(0.05)


async def test_an_edited_corpus_is_reindexed_on_sighup_while_questions_are_answered(
    fake, bot_on_copy, corpus_copy
):
    with (corpus_copy / "overview-hen.txt").open("a", encoding="utf-8") as f:
        f.write("\n\nThe zebrafish composer is a made-up fact that only this edit adds.\n")
    bot_on_copy.process.send_signal(signal.SIGHUP)
    during = []
    while "indexed 33 passages" not in bot_on_copy.log():
        question = fake.slash("ask", 700 + len(during), question="who composed the music")
        during.append(await fake.ask(question))
        assert len(during) < 2000, f"the reload never finished:\n{bot_on_copy.log()}"
    assert during  # asked while the new index was being built
    assert all("Nakamura" in r.text for r in during)
    reply = await fake.ask(fake.slash("ask", 1, question="zebrafish composer"))
    assert "zebrafish" in reply.text


async def test_a_broken_corpus_on_reload_keeps_the_old_one_serving(fake, bot_on_copy, corpus_copy):
    (corpus_copy / "manifest.toml").write_text("[film\n")
    bot_on_copy.process.send_signal(signal.SIGHUP)
    await wait_for_log(bot_on_copy, "corpus reload failed")
    reply = await fake.ask(fake.slash("ask", question="who composed the music"))
    assert "Nakamura" in reply.text


async def test_a_save_waiting_on_a_locked_database_does_not_hold_up_questions(fake, bot, tmp_path):
    holder = hold_lock(tmp_path / "prefs.sqlite3", 3)
    toggle = fake.slash("spoilers on", 67)
    await fake.ask(toggle)  # acknowledged; the save now waits on the lock
    await asyncio.sleep(0.2)
    reply = await fake.ask(fake.slash("ask", 68, question="who composed the music"))
    assert "Nakamura" in reply.text
    assert reply.latency_s < 1.0  # the 2 s wait for the lock is not the event loop's
    assert "nothing changed" in (await fake.followups(toggle))[0].data["content"]
    holder.wait(10)


def assert_nothing_spoils(reply) -> None:
    """Spoiler words appear only inside spoiler tags, wherever they stand in the reply."""
    for embed in reply.embeds:
        for text in [embed.get("description", ""), *(f["value"] for f in embed.get("fields", []))]:
            outside, _ = spoiler_segments(text)
            assert not any(w in piece.lower() for w in SPOILER_WORDS for piece in outside), text
        for text in [embed.get("title", ""), embed.get("footer", {}).get("text", "")]:
            assert not any(w in text.lower() for w in SPOILER_WORDS), text
        assert not any(
            w in f["name"].lower() for w in SPOILER_WORDS for f in embed.get("fields", [])
        )
    outside, _ = spoiler_segments(reply.data.get("content") or "")
    assert not any(w in piece.lower() for w in SPOILER_WORDS for piece in outside)


SPOILER_WORDS = ("axe", "karate", "murder", "killed")


async def test_a_question_naming_the_twist_is_echoed_only_inside_spoiler_tags(fake, bot):
    question = "did kyomoto die in the axe attack at her art college?"
    for member in (90, 91):
        if member == 91:
            await fake.answer(fake.slash("spoilers on", member))
        reply = await fake.ask(fake.slash("ask", member, question=question))
        assert_nothing_spoils(reply)
        echo = reply.embeds[0]["description"].split("\n")[0]
        assert spoiler_segments(echo)[1] == [question]


async def test_the_channel_learns_nothing_from_a_question_only_spoilers_answer(fake, bot):
    """Whatever is withheld, the channel's reply neither mentions spoilers nor changes
    with them; the count and the way to see them go to the asker alone."""
    public = {}
    for question in ("does fujino know karate?", "does fujino know judo?", "does fujino die"):
        asked = fake.slash("ask", 92, question=question)
        reply = await fake.ask(asked)
        assert_nothing_spoils(reply)
        followups = await fake.followups(asked)
        public[question] = not reply.ephemeral
        if not reply.ephemeral:
            assert "spoiler" not in reply.text.lower() and "🔒" not in reply.text
            assert all(f.ephemeral for f in followups)
        told = " ".join([reply.text] * reply.ephemeral + [f.text for f in followups])
        if question.endswith("karate?"):  # only the twist answers it: the asker is told
            assert "withheld" in told and "/spoilers on" in told
    # Karate is only in the twist, judo nowhere: the channel sees both go alike.
    assert public["does fujino know karate?"] == public["does fujino know judo?"]


async def test_a_guess_is_shown_to_the_asker_alone_and_marked(fake, bot):
    reply = await fake.ask(fake.slash("ask", 93, question="what's the weather in tokyo?"))
    assert reply.ephemeral and "not sure" in reply.text


async def test_a_public_answer_with_withheld_passages_does_not_mention_them(fake, bot):
    asked = fake.slash("ask", 94, question="what happens to kyomoto")
    reply = await fake.ask(asked)
    assert not reply.ephemeral
    for word in ("spoiler", "withheld", "🔒", "hidden"):
        assert word not in reply.text.lower()
    [notice] = await fake.followups(asked)
    assert notice.ephemeral and "withheld" in notice.text


async def test_more_results_follow_the_spoiler_setting_at_click_time(fake, bot):
    member = 95
    await fake.answer(fake.slash("spoilers on", member))
    first = await fake.ask(fake.slash("ask", member, question="what happens to kyomoto"))
    assert any("||" in f["value"] for f in first.embeds[0]["fields"])  # spoilers shown
    await fake.answer(fake.slash("spoilers off", member))
    status = await fake.ask(fake.slash("spoilers status", member))
    assert "**off**" in status.data["content"]
    pages = []
    while True:
        page = await fake.ask(fake.click(first, "More results", member))
        assert page.ephemeral
        pages.append(page)
        if not page.embeds:
            break
    for page in pages:
        assert not any(w in page.text.lower() for w in SPOILER_WORDS), page.text
        assert "||" not in page.text
    assert "withheld" in pages[-1].text  # the last says what the setting now keeps back


async def test_a_forged_index_cache_cannot_unmark_a_spoiler(fake, tmp_path):
    """A cache file rewritten with every spoiler mark cleared, under the key anyone can
    compute: the bot refuses it, rebuilds, and still withholds the twist."""
    cache = tmp_path / "cache"
    open_retriever(DEFAULT_CORPUS, cache)
    path = cache_path(cache, DEFAULT_CORPUS)
    with path.open("rb") as f:
        f.seek(32)
        with np.load(f) as z:
            unmarked = np.full_like(z["spoiler"], -1)
    _forge(path, b"not the key".ljust(32), spoiler=unmarked)
    async for process in run_bot(BotProcess(fake, tmp_path)):
        reply = await fake.ask(fake.slash("ask", 96, question="how did kyomoto die"))
        assert_nothing_spoils(reply)
        assert "unreadable" in process.log() and "seal" in process.log()


async def test_a_database_deleted_while_running_is_started_anew_and_keeps_choices(
    fake, bot, tmp_path
):
    await fake.answer(fake.slash("spoilers on", 97))
    for name in ("prefs.sqlite3", "prefs.sqlite3-wal", "prefs.sqlite3-shm"):
        (tmp_path / name).unlink()
    reply = await fake.ask(fake.slash("ask", 98, question="who composed the music"))
    assert "Nakamura" in reply.text  # questions go on being answered
    saved = await fake.answer(fake.slash("spoilers on", 99))
    assert "**on**" in saved.data["content"]
    await bot.stop()
    await bot.start()
    status = await fake.ask(fake.slash("spoilers status", 99))
    assert "**on**" in status.data["content"]  # the confirmed choice reached the file
    assert "deleted or replaced while the bot ran" in bot.log()


@pytest.fixture
async def lexical_bot_on_copy(fake, tmp_path, corpus_copy):
    """BM25 alone: the reload below indexes 15 MB, which the model would take minutes on."""
    env = {"CORPUS_DIR": str(corpus_copy), "RETRIEVAL": "lexical"}
    async for process in run_bot(BotProcess(fake, tmp_path, env=env)):
        yield process


async def test_reloads_are_one_at_a_time_and_the_latest_request_wins(
    fake, lexical_bot_on_copy, corpus_copy
):
    """A slow reload of a big document, then a quick one that reverts it: the big one
    finishes last but must not be served; and a burst of SIGHUPs costs two builds."""
    bot_on_copy = lexical_bot_on_copy
    manifest = corpus_copy / "manifest.toml"
    original = manifest.read_text(encoding="utf-8")
    sentences = (corpus_copy / "review-smash-hit.txt").read_text(encoding="utf-8").split(". ")
    paragraphs = [". ".join(sentences[i % 7 :] + sentences[: i % 7]) for i in range(7000)]
    paragraphs.append("The zebrafish composer is a made-up fact found only here.")
    (corpus_copy / "big.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")
    manifest.write_text(original + entry("big", "big.txt"), encoding="utf-8")
    assert (corpus_copy / "big.txt").stat().st_size > 15_000_000
    bot_on_copy.process.send_signal(signal.SIGHUP)
    await wait_for_log(bot_on_copy, "reloading the corpus")
    await asyncio.sleep(0.5)
    manifest.write_text(original, encoding="utf-8")
    (corpus_copy / "big.txt").unlink()
    for _ in range(8):
        bot_on_copy.process.send_signal(signal.SIGHUP)
    await wait_for_log(bot_on_copy, "serving 32 passages", count=2, timeout=60)  # start, end
    await asyncio.sleep(1.0)  # nothing more is swapped in after it
    log = bot_on_copy.log()
    assert "a newer reload was requested meanwhile" in log
    assert log.count("reloading the corpus") == 2  # the big build, then one for all eight
    assert log.count("serving ") == 2  # at start, and the reverted corpus once
    reply = await fake.ask(fake.slash("ask", 3, question="zebrafish composer"))
    assert "made-up fact" not in reply.text and "I don't know" in reply.text


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"FAKE_DISCORD_URL": "http://127.0.0.1:9"}, "Cannot reach Discord"),
        ({"FAKE_DISCORD_URL": "http://discord.invalid"}, "Cannot reach Discord"),
        ({"DISCORD_GUILD_ID": "123456"}, "applications.commands"),
        ({"DISCORD_TOKEN": "fake.bot\n.token"}, "characters a bot token cannot have"),
        ({"DISCORD_TOKEN": '"fake.bot.token"'}, "characters a bot token cannot have"),
        ({"DISCORD_PROXY": "socks://nowhere"}, "DISCORD_PROXY must look like"),
    ],
)
async def test_start_up_failures_an_admin_meets_are_explained_in_one_paragraph(
    fake, tmp_path, env, says
):
    process = BotProcess(fake, tmp_path, env=env)
    await process.start(wait=False)
    assert await process.wait(60) == 2
    log = process.log()
    assert says in log and "Traceback" not in log
    assert TOKEN not in log and "fake.bot\n.token" not in log
    if "DISCORD_GUILD_ID" in env:
        assert f"client_id={APP_ID}" in log and "server 123456" in log
