"""End-to-end /ask benchmark: the real bot process driven through the loopback fake Discord.

    python -m bench.discord_e2e [--json]

Measures the time from process start to commands synced, then /ask acknowledgement
latency (dispatch on the fake gateway -> the bot's interaction callback arrives) for
100 asks one after another and for 50 members asking at the same moment.
"""

import argparse
import asyncio
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


async def main(as_json: bool) -> None:
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
        futures = [
            await fake.send(fake.slash("ask", 30_000 + n, question=QUESTIONS[n % len(QUESTIONS)]))
            for n in range(50)
        ]
        burst = [r.latency_s for r in await asyncio.gather(*futures)]
        await bot.stop()
    await fake.stop()
    result = {
        "start_to_synced_s": round(startup_s, 3),
        "sequential_asks": summary(sequential),
        "concurrent_asks_50_members": summary(burst),
        "violations": fake.violations,
    }
    if as_json:
        print(json.dumps(result))
    else:
        print(f"process start -> commands synced: {result['start_to_synced_s']} s")
        for key in ("sequential_asks", "concurrent_asks_50_members"):
            print(f"{key}: {result[key]}")
        print(f"fake Discord violations: {fake.violations or 'none'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    asyncio.run(main(parser.parse_args().json))
