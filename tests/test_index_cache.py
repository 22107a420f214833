"""The on-disk index: a current cache serves exactly what a build would; any change rebuilds."""

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.config import CHECKOUT, DEFAULT_CORPUS
from bot.core.evaluation import load_eval_set
from bot.core.index_cache import cache_path, open_retriever
from bot.core.progress import Progress


@pytest.fixture
def opened(caplog, tmp_path):
    """Opens a corpus with a cache in tmp_path; returns (retriever, how it was opened)."""
    caplog.set_level(logging.INFO, logger="lookback")

    def open_(directory: Path, cache_dir: Path = tmp_path / "cache"):
        caplog.clear()
        retriever = open_retriever(directory, cache_dir)
        how = "cache" if "from the index cache" in caplog.text else "built"
        return retriever, how

    return open_


def results(retriever) -> list:
    return [
        [
            (h.chunk.id, round(h.score, 9), h.highlight)
            for h in retriever.search(q.question, 10).hits
        ]
        for q in load_eval_set(DEFAULT_CORPUS).questions
    ]


def test_a_cached_corpus_has_the_same_chunks_and_answers_as_a_fresh_build(opened, corpus_copy):
    built, how = opened(corpus_copy)
    assert how == "built"
    cached, how = opened(corpus_copy)
    assert how == "cache"
    assert cached.corpus == built.corpus
    assert results(cached) == results(built)


def test_editing_a_document_rebuilds_and_serves_the_new_text(opened, corpus_copy, tmp_path):
    opened(corpus_copy)
    with (corpus_copy / "overview-hen.txt").open("a", encoding="utf-8") as f:
        f.write("\n\nThe zebrafish composer is a made-up fact that only this edit adds.\n")
    retriever, how = opened(corpus_copy)
    assert how == "built"
    assert "zebrafish" in retriever.search("zebrafish composer", 3).hits[0].chunk.text
    assert len(list((tmp_path / "cache").iterdir())) == 1  # the stale file was replaced
    assert opened(corpus_copy)[1] == "cache"


def test_a_document_edited_during_a_build_is_not_cached_under_its_old_contents(
    opened, corpus_copy, tmp_path
):
    """The edit lands after the cache check but before the build reads the file; the
    revert then brings back the old contents, which must not find the edited build."""
    document = corpus_copy / "overview-hen.txt"
    original = document.read_bytes()
    edit = "\n\nThe zebrafish composer is a made-up fact that only this edit adds.\n"

    def edit_once(phase: str, done: int, total: int) -> None:
        if done == 1 and document.read_bytes() == original:
            document.write_bytes(original + edit.encode())

    retriever = open_retriever(corpus_copy, tmp_path / "cache", edit_once)
    assert any("zebrafish" in c.text for c in retriever.corpus.chunks)  # built mid-edit
    document.write_bytes(original)
    retriever, how = opened(corpus_copy)
    assert how == "built"
    assert not any("zebrafish" in c.text for c in retriever.corpus.chunks)


def test_editing_the_manifest_rebuilds(opened, corpus_copy):
    opened(corpus_copy)
    manifest = corpus_copy / "manifest.toml"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace("[spoilers]", "[unused]"))
    retriever, how = opened(corpus_copy)
    assert how == "built"
    assert not any(c.is_spoiler and c.spoiler != "spoiler section" for c in retriever.corpus.chunks)


@pytest.mark.parametrize("damage", [b"", b"not a zip file", "truncated"])
def test_a_damaged_cache_file_is_rebuilt_and_replaced(
    opened, corpus_copy, tmp_path, caplog, damage
):
    built, _ = opened(corpus_copy)
    path = cache_path(tmp_path / "cache", corpus_copy)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else damage)
    retriever, how = opened(corpus_copy)
    assert how == "built" and "unreadable" in caplog.text
    assert results(retriever) == results(built)
    assert opened(corpus_copy)[1] == "cache"


def test_a_cache_that_cannot_be_written_still_serves(opened, corpus_copy, caplog):
    # /proc refuses new files even to root, unlike a chmod'ed folder.
    retriever, how = opened(corpus_copy, Path("/proc/lookback-cache"))
    assert how == "built" and "could not write the index cache" in caplog.text
    assert retriever.search("who composed the music", 3).hits


def test_changing_the_analyzer_code_rebuilds_the_cache(corpus_copy, tmp_path):
    """A copy of the package, run as a real process, then with its analyzer's source changed."""
    package = tmp_path / "package"
    shutil.copytree(CHECKOUT / "bot", package / "bot")
    cache = tmp_path / "cache"
    ask = [sys.executable, "-m", "bot", "ask", "--corpus", str(corpus_copy), "who directed it"]

    def ask_and_read_key() -> tuple[str, int]:
        result = subprocess.run(
            ask,
            cwd=package,
            env={"PATH": "/usr/bin:/bin", "INDEX_CACHE_DIR": str(cache)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        path = cache_path(cache, corpus_copy)
        with np.load(path) as f:
            return str(f["key"]), path.stat().st_mtime_ns

    first = ask_and_read_key()
    assert ask_and_read_key() == first  # current: read, not rewritten
    with (package / "bot" / "core" / "analysis.py").open("a") as f:
        f.write("\n# an analyzer change\n")
    assert ask_and_read_key()[0] != first[0]


def test_long_indexing_reports_progress_and_a_cache_hit_says_nothing(corpus_copy, tmp_path):
    said: list[str] = []
    open_retriever(corpus_copy, tmp_path / "cache", Progress(said.append, every_s=0))
    assert "reading documents: 5 of 5 (100%)" in said
    assert any(line.startswith("analysing passages: ") for line in said)
    said.clear()
    open_retriever(corpus_copy, tmp_path / "cache", Progress(said.append, every_s=0))
    assert said == []


def test_quick_indexing_says_nothing(corpus_copy, tmp_path):
    said: list[str] = []
    open_retriever(corpus_copy, tmp_path / "cache", Progress(said.append, every_s=60))
    assert said == []
