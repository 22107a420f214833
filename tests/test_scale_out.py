"""Several bot processes on one PostgreSQL, as Discord drives them through the fake: each
runs some shards; member state, reloads and identify turns go through the database.
(The fake records two shards identifying within 5 s as a violation, which fails a test.)"""

import asyncio
import subprocess
import sys
import time

import pytest

from tests.bot_process import BotProcess, run_bot
from tests.fake_discord import GUILD_ID

TWIST = "axe"


def shard_env(database_url: str, corpus, shard: int) -> dict:
    return {
        "DATABASE_URL": database_url,
        "DATABASE_PATH": None,
        "CORPUS_DIR": str(corpus),
        "SHARD_COUNT": "2",
        "SHARD_IDS": str(shard),
    }


@pytest.fixture
async def two_bots(fake, tmp_path, corpus_copy, database_url):
    """Shard 0 (DMs, and the one that syncs commands) and shard 1 (the test guild)."""
    assert fake.shard_of(GUILD_ID) == 0  # no sessions yet: shard_of knows no count
    first = BotProcess(fake, tmp_path / "shard0", env=shard_env(database_url, corpus_copy, 0))
    second = BotProcess(fake, tmp_path / "shard1", env=shard_env(database_url, corpus_copy, 1))
    for process in (first, second):
        process.workdir.mkdir()
    async for a in run_bot(first):
        await second.start(wait=False)
        await fake.wait_shards([0, 1])
        assert fake.shard_of(GUILD_ID) == 1 and fake.shard_of(None) == 0
        yield a, second
        await second.stop()
        assert "Traceback" not in second.log()


def reload(database_url: str) -> subprocess.CompletedProcess:
    env = {"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "bot", "reload", "--timeout", "60"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


async def test_member_state_is_shared_and_each_shard_answers_its_own(fake, two_bots):
    shard0, shard1 = two_bots
    opted = await fake.answer(fake.slash("spoilers on", 800))  # in the guild: shard 1
    assert "**on**" in opted.text
    reply = await fake.ask(fake.slash("ask", 800, dm=True, question="how did kyomoto die"))
    assert TWIST in reply.text.lower()  # in a DM, so shard 0 read it from PostgreSQL
    assert "synced commands" in shard0.log() and "synced commands" not in shard1.log()
    # Nothing was answered twice: the fake records a second response as a violation.


async def test_a_reload_reaches_every_process_and_reports_what_each_serves(
    fake,
    two_bots,
    corpus_copy,
    database_url,
):
    with (corpus_copy / "overview-hen.txt").open("a", encoding="utf-8") as f:
        f.write("\n\nThe zebrafish composer is a made-up fact that only this edit adds.\n")
    started = time.monotonic()
    result = reload(database_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("✓") == 2 and "33 passages" in result.stdout
    print(f"reload converged in {time.monotonic() - started:.1f} s: {result.stdout}")
    for dm in (True, False):
        reply = await fake.ask(fake.slash("ask", 801, dm=dm, question="zebrafish composer"))
        assert "made-up fact" in reply.text, dm


async def test_a_broken_corpus_does_not_converge_and_the_old_one_keeps_serving(
    fake,
    two_bots,
    corpus_copy,
    database_url,
):
    (corpus_copy / "manifest.toml").write_text("[film\n")
    result = reload(database_url)
    assert result.returncode == 1
    assert "did not converge" in result.stdout and "not valid TOML" in result.stdout
    for dm in (True, False):
        reply = await fake.ask(fake.slash("ask", 802, dm=dm, question="who composed the music"))
        assert "Nakamura" in reply.text


async def test_an_outage_fails_closed_and_the_bot_recovers(
    fake,
    two_bots,
    server_switch,
):
    member, question = 803, "how did kyomoto die"
    await fake.answer(fake.slash("spoilers on", member))
    server_switch.stop()
    asked = fake.slash("ask", member, question=question)
    reply = await fake.ask(asked)  # the setting cannot be read: spoilers are left out
    assert TWIST not in reply.text.lower()
    notes = " ".join(f.text for f in await fake.followups(asked))
    assert "couldn't read your spoiler setting" in notes
    refused = await fake.answer(fake.slash("spoilers off", member))
    assert "nothing changed" in refused.text
    down_at = time.monotonic()
    server_switch.start()
    async with asyncio.timeout(30):
        while TWIST not in (await fake.ask(fake.slash("ask", member, question=question))).text:
            await asyncio.sleep(0.5)
    print(f"answering with the member's setting again {time.monotonic() - down_at:.1f} s "
          "after the server came back")  # fmt: skip
    shard0, shard1 = two_bots
    assert shard0.process.returncode is None and shard1.process.returncode is None


async def test_sync_registers_the_commands_from_one_place(fake, tmp_path):
    env = BotProcess(fake, tmp_path).environment()
    sync = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fake_launcher",
        "sync",
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip  (the fake answers on this loop: a blocking run would never finish)
    out, err = await asyncio.wait_for(sync.communicate(), 60)
    assert sync.returncode == 0, err.decode()
    assert "synced commands: ask" in out.decode()
    assert {c["name"] for c in fake.synced[str(GUILD_ID)]} >= {"ask", "help", "config"}
    assert fake.identifies == 0  # over HTTP only: no gateway session was started


async def test_the_database_password_never_reaches_the_log(fake, tmp_path, database_url):
    url = database_url.replace("postgres@", "postgres:s3cret-pw@")
    env = {"DATABASE_URL": url, "DATABASE_PATH": None}
    process = BotProcess(fake, tmp_path, env=env)
    async for _ in run_bot(process):
        await fake.ask(fake.slash("ask", question="who directed it"))
    assert "s3cret-pw" not in process.log()
