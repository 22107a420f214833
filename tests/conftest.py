"""Shared fixtures: the shipped corpus, indexed once, and tiny corpora built on disk."""

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.config import DEFAULT_CORPUS
from bot.core.corpus import load_corpus
from bot.core.retrieval import Retriever

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
def retriever() -> Retriever:
    return Retriever(load_corpus(DEFAULT_CORPUS))


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
