"""End-to-end /ask benchmark: the real bot process driven through the loopback fake Discord.

    python -m bench.discord_e2e [--bursts 10] [--lexical] [--json]
    python -m bench.discord_e2e --instructions [--bursts 6] [--lexical]

Measures the time from process start to commands synced, then /ask acknowledgement
latency (dispatch on the fake gateway -> the bot's interaction callback arrives) for
100 asks one after another, and for bursts of 50 members asking at the same moment
(pooled over all bursts, the first and the later ones apart, and each burst's p99),
with the bot's CPU time per ask in the bursts (all its threads); then the cost of an
autocomplete keystroke and of a 👍/👎 click, one after another.

The first burst also opens the bot's HTTP connections (one per concurrent request),
as a burst after a quiet spell does, so it is usually the slowest. The fake times a
callback when its bytes reach the fake's socket, as Discord times a response when it
receives it: on Linux by the kernel's receive time, so the fake's own event loop, busy
with the rest of the burst, does not add to it (elsewhere it can, by a few ms).

A burst's last acknowledgement waits for the CPU of all 50 asks, and on a shared
machine the same code's CPU per ask varies by a third from run to run. To tell
whether a change made /ask cheaper, `--instructions` runs the bot under callgrind
and counts the instructions it executes per ask in the bursts, which repeat to 0.1%.
"""

import argparse
import asyncio
import gc
import json
import shutil
import statistics
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np

from bot.config import DEFAULT_CORPUS
from bot.core import bench
from bot.core.bench import callgrind_control, callgrind_total
from bot.core.evaluation import load_eval_set
from bot.core.index_cache import open_retriever
from tests.bot_process import BotProcess
from tests.fake_discord import FakeDiscord

# Distinct questions, as members ask them (the project's own question set).
QUESTIONS = [q.question for q in load_eval_set(DEFAULT_CORPUS).questions]
BURST = 50
# Callgrind with instrumentation off until the bursts: start-up runs at near full speed.
# Its files land in the bot's working folder (callgrind.out, then .1 for the dump).
CALLGRIND = (*bench.CALLGRIND, "--callgrind-out-file=callgrind.out")
SLOWDOWN_DEADLINE_S = 300.0  # Discord's 3 s, for a bot that callgrind slows ~50x


def summary(latencies_s: list[float]) -> dict[str, float]:
    ms = [x * 1000 for x in latencies_s]
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(max(ms), 2),
    }


async def one_by_one(fake: FakeDiscord, asks: int) -> list[float]:
    """Latencies of `asks` asks, each sent when the previous one was answered."""
    latencies = []
    for n in range(asks):
        question = QUESTIONS[n % len(QUESTIONS)]
        interaction = fake.slash("ask", 20_000 + n, question=question)
        reply = await fake.ask(interaction, timeout=fake.response_deadline_s + 60)
        latencies.append(reply.latency_s)
    return latencies


async def burst(fake: FakeDiscord, number: int) -> list[float]:
    """Latencies of BURST new members (no cooldown) asking at the same moment."""
    members = range(30_000 + 100 * number, 30_000 + 100 * number + BURST)
    # The fake stands in for Discord's servers: a collection pausing it would be
    # timed as the bot's latency (15 ms was seen), so it collects between bursts.
    gc.collect()
    gc.disable()
    try:
        futures = [
            await fake.send(fake.slash("ask", m, question=QUESTIONS[m % len(QUESTIONS)]))
            for m in members
        ]
        return [r.latency_s for r in await asyncio.gather(*futures)]
    finally:
        gc.enable()


async def keystrokes(fake: FakeDiscord, n: int) -> list[float]:
    """Latencies of `n` autocomplete requests, as members type questions letter by letter."""
    typed = [q[: 1 + k % len(q)] for k, q in enumerate(QUESTIONS * (n // len(QUESTIONS) + 1))]
    latencies = []
    for k in range(n):
        interaction = fake.slash("ask", 40_000 + k, focused="question", question=typed[k])
        latencies.append((await fake.ask(interaction, timeout=60)).latency_s)
    return latencies


async def votes(fake: FakeDiscord, n: int) -> list[float]:
    """Latencies of `n` 👍/👎 clicks (the first response: a deferral, then a follow-up)."""
    answer = await fake.ask(fake.slash("ask", 50_000, question="who composed the music"))
    latencies = []
    for k in range(n):
        click = fake.click(answer, "👎" if k % 2 else "👍", 50_001 + k)
        latencies.append((await fake.ask(click, timeout=60)).latency_s)
        await fake.followups(click)
    return latencies


async def per_interaction(fake: FakeDiscord, pid: int, kind, n: int) -> dict:
    before = cpu_s(pid)
    latencies = await kind(fake, n)
    after = cpu_s(pid)
    cpu = None if before is None or after is None else round((after - before) / n * 1e6)
    return {**summary(latencies), "bot_cpu_us_each": cpu}


def cpu_s(pid: int) -> float | None:
    """A process's CPU time so far, all its threads (the model runs in worker threads),
    from Linux's /proc; None elsewhere."""
    try:
        threads = Path(f"/proc/{pid}/task").glob("*/schedstat")
        return sum(int(t.read_text().split()[0]) for t in threads) / 1e9
    except (OSError, ValueError, IndexError):
        return None


@asynccontextmanager
async def bot_against(
    fake: FakeDiscord, wrapper: Sequence[str] = (), env: dict[str, str] | None = None
) -> AsyncIterator[BotProcess]:
    """The real bot running against the started fake; both stopped however the block ends."""
    await fake.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # The index and the model's vectors built here, so the bot (perhaps under
            # callgrind) starts from its cache.
            open_retriever(DEFAULT_CORPUS, Path(tmp) / "cache")
            bot = BotProcess(fake, Path(tmp), env=env or {}, wrapper=list(wrapper))
            try:
                await bot.start(timeout=SLOWDOWN_DEADLINE_S if wrapper else 30.0)
                yield bot
            finally:
                await bot.stop()
    finally:
        await fake.stop()


async def measure(bursts: int, env: dict[str, str]) -> dict:
    fake = FakeDiscord()
    async with bot_against(fake, env=env) as bot:
        assert bot.process is not None
        startup_s = fake.synced_at - bot.started_at
        sequential = await one_by_one(fake, 100)
        cpu_before = cpu_s(bot.process.pid)
        timed: list[list[float]] = []  # each burst's latencies
        for b in range(bursts):
            timed.append(await burst(fake, b))
            await asyncio.sleep(0.2)
        cpu_after = cpu_s(bot.process.pid)
        typing = await per_interaction(fake, bot.process.pid, keystrokes, 200)
        voting = await per_interaction(fake, bot.process.pid, votes, 100)
    cpu_per_ask_us = None
    if cpu_before is not None and cpu_after is not None:
        cpu_per_ask_us = round((cpu_after - cpu_before) / (BURST * bursts) * 1e6)
    return {
        "start_to_synced_s": round(startup_s, 3),
        "sequential_asks": summary(sequential),
        "concurrent_asks_50_members": summary([x for b in timed for x in b]),
        "first_burst": summary(timed[0]),
        "later_bursts": summary([x for b in timed[1:] for x in b]) if len(timed) > 1 else None,
        "p99_ms_of_each_burst": [summary(b)["p99_ms"] for b in timed],
        "bot_cpu_us_per_ask_in_bursts": cpu_per_ask_us,
        "autocomplete_keystrokes": typing,
        "feedback_clicks": voting,
        "violations": fake.violations,
    }


async def count_instructions(bursts: int, env: dict[str, str]) -> dict:
    """Instructions the bot executes per ask in bursts, with the same warm-up as `measure`."""
    fake = FakeDiscord(response_deadline_s=SLOWDOWN_DEADLINE_S)
    async with bot_against(fake, CALLGRIND, env) as bot:
        assert bot.process is not None
        pid = str(bot.process.pid)
        await one_by_one(fake, 100)
        callgrind_control("--instr=on", pid)
        for b in range(bursts):
            await burst(fake, b)
        callgrind_control("--instr=off", pid)
        callgrind_control("--dump", pid)
        await bot.stop()  # callgrind writes its last file on exit
        total = sum(callgrind_total(f) for f in bot.workdir.glob("callgrind.out*"))
    return {
        "instructions_per_ask": round(total / (BURST * bursts)),
        "asks": BURST * bursts,
        "violations": fake.violations,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--bursts", type=int, help="bursts of 50 asks (default 10, or 6 with --instructions)"
    )
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions under callgrind"
    )
    parser.add_argument(
        "--lexical", action="store_true", help="the bot with RETRIEVAL=lexical (no model)"
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="set for the bot"
    )
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    if args.lexical:
        env["RETRIEVAL"] = "lexical"
    if args.instructions:
        if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
            parser.error("--instructions needs valgrind (Debian and Ubuntu: apt install valgrind)")
        result = asyncio.run(count_instructions(args.bursts or 6, env))
    else:
        result = asyncio.run(measure(args.bursts or 10, env))
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
