"""Shared fixtures: the shipped corpus, indexed once, and tiny corpora built on disk."""

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.config import DEFAULT_CORPUS
from bot.core.index_cache import open_retriever
from bot.core.retrieval import Retriever
from tests.bot_process import BotProcess, run_bot
from tests.fake_discord import FakeDiscord

# The PostgreSQL fixtures, registered here once: imported into each test module instead,
# pytest made each module its own session-scoped server, and started two clusters.
from tests.postgres import database_url, postgres_server, server_switch  # noqa: F401

MANIFEST_HEAD = """
[film]
title = "Test Film"
chrome = ['^\\d+ min read$']

[synonyms]
music = ["music", "score"]

[spoilers]
twist = ["secret twin"]
"""


@pytest.fixture(scope="session")
def built_cache(tmp_path_factory) -> Path:
    """An index cache of the shipped corpus, built once (the model's vectors included):
    bot processes start from a copy of it instead of each embedding the corpus again."""
    cache = tmp_path_factory.mktemp("index-cache")
    open_retriever(DEFAULT_CORPUS, cache)
    BotProcess.seed_cache = cache
    return cache


@pytest.fixture(scope="session")
def retriever(built_cache) -> Retriever:
    """The shipped corpus as the bot serves it: hybrid retrieval."""
    return open_retriever(DEFAULT_CORPUS, built_cache)


@pytest.fixture(scope="session")
def lexical_retriever(built_cache) -> Retriever:
    """The shipped corpus with BM25 alone, as the bot serves it with RETRIEVAL=lexical."""
    return open_retriever(DEFAULT_CORPUS, built_cache, semantic=False)


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    """A copy of the shipped corpus that a test may edit."""
    corpus = tmp_path / "corpus"
    shutil.copytree(DEFAULT_CORPUS, corpus)
    return corpus


@pytest.fixture
def make_corpus(tmp_path: Path) -> Callable[..., Path]:
    """Write a corpus: {file name: text or bytes}, plus manifest entries to list."""

    def make(files: dict[str, str | bytes], entries: str, head: str = MANIFEST_HEAD) -> Path:
        for name, text in files.items():
            path = tmp_path / name
            if isinstance(text, bytes):
                path.write_bytes(text)
            else:
                path.write_text(text, encoding="utf-8")
        (tmp_path / "manifest.toml").write_text(head + entries, encoding="utf-8")
        return tmp_path

    return make


def entry(doc_id: str, file: str, extra: str = "") -> str:
    return f"""
[[documents]]
id = "{doc_id}"
file = "{file}"
title = "{doc_id} title"
source = "{doc_id} source"
kind = "review"
{extra}
"""


@pytest.fixture(autouse=True)
def _bots_start_from_the_built_cache(built_cache) -> None:
    """Every test's bot process copies the session's index cache (see built_cache)."""


@pytest.fixture
async def fake():
    """The loopback fake of Discord; a test fails if the bot broke one of its rules."""
    fake = FakeDiscord()
    await fake.start()
    yield fake
    await fake.stop()
    assert fake.violations == []


@pytest.fixture
async def bot(fake, tmp_path):
    """The real bot process, started against the fake, in tmp_path."""
    async for process in run_bot(BotProcess(fake, tmp_path)):
        yield process


@pytest.fixture
async def bot_on_copy(fake, tmp_path, corpus_copy):
    async for process in run_bot(BotProcess(fake, tmp_path, env={"CORPUS_DIR": str(corpus_copy)})):
        yield process
