"""End-to-end /ask benchmark: the real bot process driven through the loopback fake Discord.

    python -m bench.discord_e2e [--bursts 10] [--json]

Measures the time from process start to commands synced, then /ask acknowledgement
latency (dispatch on the fake gateway -> the bot's interaction callback arrives) for
100 asks one after another, and for bursts of 50 members asking at the same moment
(pooled over all bursts, the first and the later ones apart, and each burst's p99).

The first burst also opens the bot's HTTP connections (one per concurrent request),
as a burst after a quiet spell does, so it is usually the slowest. The fake times a
callback when its bytes reach the fake's socket, as Discord times a response when it
receives it; the fake's own event loop, busy with the rest of the burst, can still
make that a little late, never early.
"""

import argparse
import asyncio
import gc
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np

from bot.config import DEFAULT_CORPUS
from bot.evaluation import load_eval_set
from tests.bot_process import BotProcess
from tests.fake_discord import FakeDiscord

# Distinct questions, as members ask them (the project's own question set).
QUESTIONS = [q.question for q in load_eval_set(DEFAULT_CORPUS).questions]


def summary(latencies_s: list[float]) -> dict[str, float]:
    ms = [x * 1000 for x in latencies_s]
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(max(ms), 2),
    }


async def main(as_json: bool, bursts: int) -> None:
    fake = FakeDiscord()
    await fake.start()
    with tempfile.TemporaryDirectory() as tmp:
        bot = BotProcess(fake, Path(tmp))
        await bot.start()
        startup_s = fake.synced_at - bot.started_at
        sequential = []
        for n in range(100):
            question = QUESTIONS[n % len(QUESTIONS)]
            reply = await fake.ask(fake.slash("ask", 20_000 + n, question=question))
            sequential.append(reply.latency_s)
        timed: list[list[float]] = []  # each burst's latencies
        for b in range(bursts):
            members = range(30_000 + 100 * b, 30_050 + 100 * b)  # new members: no cooldown
            # The fake stands in for Discord's servers: a collection pausing it would
            # be timed as the bot's latency (15 ms was seen), so it collects between bursts.
            gc.collect()
            gc.disable()
            try:
                futures = [
                    await fake.send(fake.slash("ask", m, question=QUESTIONS[m % len(QUESTIONS)]))
                    for m in members
                ]
                latencies = [r.latency_s for r in await asyncio.gather(*futures)]
            finally:
                gc.enable()
            timed.append(latencies)
            await asyncio.sleep(0.2)
        await bot.stop()
    await fake.stop()
    result = {
        "start_to_synced_s": round(startup_s, 3),
        "sequential_asks": summary(sequential),
        "concurrent_asks_50_members": summary([x for b in timed for x in b]),
        "first_burst": summary(timed[0]),
        "later_bursts": summary([x for b in timed[1:] for x in b]) if len(timed) > 1 else None,
        "p99_ms_of_each_burst": [summary(b)["p99_ms"] for b in timed],
        "violations": fake.violations,
    }
    if as_json:
        print(json.dumps(result))
    else:
        print(f"process start -> commands synced: {result['start_to_synced_s']} s")
        keys = ("sequential_asks", "concurrent_asks_50_members", "first_burst", "later_bursts")
        for key in (*keys, "p99_ms_of_each_burst"):
            print(f"{key}: {result[key]}")
        print(f"fake Discord violations: {fake.violations or 'none'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--bursts", type=int, default=10, help="bursts of 50 asks (default 10)")
    args = parser.parse_args()
    asyncio.run(main(args.json, args.bursts))
