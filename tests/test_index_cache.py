"""The on-disk index: a current cache serves exactly what a build would; any change rebuilds."""

import hashlib
import hmac
import io
import logging
import random
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from bot.config import CHECKOUT, DEFAULT_CORPUS
from bot.core import index_cache
from bot.core.evaluation import load_eval_set
from bot.core.index_cache import cache_path, open_retriever, peek
from bot.core.progress import Progress


@pytest.fixture
def opened(caplog, tmp_path):
    """Opens a corpus with a cache in tmp_path; returns (retriever, how it was opened)."""
    caplog.set_level(logging.INFO, logger="lookback")

    def open_(directory: Path, cache_dir: Path = tmp_path / "cache", semantic: bool = False):
        # BM25 alone unless asked: these tests are about the file, and embedding the
        # corpus again for each of them would only slow them down.
        caplog.clear()
        retriever = open_retriever(directory, cache_dir, semantic=semantic)
        how = "cache" if "from the index cache" in caplog.text else "built"
        return retriever, how

    return open_


def results(retriever) -> list:
    return [
        [
            (h.chunk.id, round(h.score, 9), h.highlight)
            for h in retriever.search(q.question, 10).everything.hits
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


def test_the_models_vectors_are_cached_with_the_index_and_answer_alike(opened, corpus_copy):
    built, how = opened(corpus_copy, semantic=True)
    assert how == "built" and built.mode == "hybrid"
    cached, how = opened(corpus_copy, semantic=True)
    assert how == "cache" and cached.mode == "hybrid"
    assert np.array_equal(cached.semantic.dense.vectors, built.semantic.dense.vectors)
    assert results(cached) == results(built)


def test_a_cache_from_another_model_is_embedded_again(opened, corpus_copy, caplog, monkeypatch):
    opened(corpus_copy, semantic=True)
    monkeypatch.setattr(index_cache, "model_digest", lambda: "a different model")
    retriever, how = opened(corpus_copy, semantic=True)
    assert how == "cache" and "embedded 32 passages" in caplog.text
    assert retriever.mode == "hybrid"


def test_a_lexical_cache_gains_vectors_when_the_model_is_wanted(opened, corpus_copy, caplog):
    opened(corpus_copy, semantic=False)
    retriever, how = opened(corpus_copy, semantic=True)
    assert how == "cache" and "embedded 32 passages" in caplog.text and retriever.semantic
    opened(corpus_copy, semantic=True)
    assert "embedded" not in caplog.text  # the vectors were cached this time


def test_a_corpus_too_large_to_embed_at_start_is_served_lexical_then_hybrid(
    corpus_copy, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="lookback")
    first = open_retriever(corpus_copy, tmp_path / "cache", embed_limit=10)
    assert first.mode == "lexical" and "no vectors yet" in caplog.text
    later = open_retriever(corpus_copy, tmp_path / "cache")  # what the background reload does
    assert later.mode == "hybrid"
    assert open_retriever(corpus_copy, tmp_path / "cache", embed_limit=10).mode == "hybrid"


def test_editing_a_document_rebuilds_and_serves_the_new_text(opened, corpus_copy, tmp_path):
    opened(corpus_copy)
    with (corpus_copy / "overview-hen.txt").open("a", encoding="utf-8") as f:
        f.write("\n\nThe zebrafish composer is a made-up fact that only this edit adds.\n")
    retriever, how = opened(corpus_copy)
    assert how == "built"
    assert "zebrafish" in retriever.search("zebrafish composer", 3).everything.hits[0].chunk.text
    assert len(list((tmp_path / "cache").glob("index-*"))) == 1  # the stale file was replaced
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
    assert how == "built" and "cannot keep the index cache in /proc" in caplog.text
    assert retriever.search("who composed the music", 3).everything.hits


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
        return str(peek(path, "key")), path.stat().st_mtime_ns

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


def _forge(path: Path, seal: bytes, **changes: np.ndarray) -> None:
    """Rewrite a cache file with some arrays changed, keeping its key (anyone can compute
    it) and sealing it with `seal`."""
    with path.open("rb") as f:
        f.seek(32)
        with np.load(f) as z:
            arrays = {name: z[name] for name in z.files} | changes
    body = io.BytesIO()
    np.savez(body, **arrays)
    path.write_bytes(hmac.new(seal, body.getvalue(), hashlib.sha256).digest() + body.getvalue())


def test_a_forged_cache_file_cannot_unmark_spoilers_or_change_the_text(
    opened, corpus_copy, tmp_path
):
    built, _ = opened(corpus_copy)
    path = cache_path(tmp_path / "cache", corpus_copy)
    with path.open("rb") as f:
        f.seek(32)
        with np.load(f) as z:
            unmarked = np.full_like(z["spoiler"], -1)
            text = np.frombuffer(bytes(z["text"]).replace(b"Oshiyama", b"Ohsiyama"), np.uint8)
    _forge(path, b"a guess at the key".ljust(32), spoiler=unmarked, text=text)
    retriever, how = opened(corpus_copy)
    assert how == "built"  # the forgery was refused, not parsed
    assert retriever.corpus == built.corpus
    assert sum(c.is_spoiler for c in retriever.corpus.chunks) > 5


@pytest.mark.parametrize("seed", range(40))
def test_random_corruptions_of_a_cache_file_are_all_rebuilt(opened, corpus_copy, tmp_path, seed):
    """Flipped bytes, a cut or a zeroed stretch anywhere: never a traceback, always a rebuild
    that serves what a fresh build does."""
    built, _ = opened(corpus_copy)
    path = cache_path(tmp_path / "cache", corpus_copy)
    data = bytearray(path.read_bytes())
    rng = random.Random(seed)
    at = rng.randrange(len(data))
    match seed % 3:
        case 0:
            data[at] ^= 1 << rng.randrange(8)
        case 1:
            del data[at:]
        case 2:
            data[at : at + 64] = bytes(len(data[at : at + 64]))
    path.write_bytes(bytes(data))
    retriever, how = opened(corpus_copy)
    assert how == "built"
    assert retriever.corpus == built.corpus


def test_a_cache_file_declaring_a_huge_array_is_rebuilt_not_allocated(
    opened, corpus_copy, tmp_path
):
    opened(corpus_copy)
    path = cache_path(tmp_path / "cache", corpus_copy)
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000,), }"
    npy = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header
    body = io.BytesIO()
    with zipfile.ZipFile(body, "w") as z:
        z.writestr("weights.npy", npy)
    path.write_bytes(bytes(32) + body.getvalue()[:224])
    assert opened(corpus_copy)[1] == "built"


def test_a_seal_key_others_could_read_or_write_is_replaced(opened, corpus_copy, tmp_path):
    opened(corpus_copy)
    key = tmp_path / "cache" / "secret.key"
    assert key.stat().st_mode & 0o777 == 0o600
    old = key.read_bytes()
    key.chmod(0o644)  # someone else may have read it: caches sealed with it are not trusted
    assert opened(corpus_copy)[1] == "built"
    assert key.read_bytes() != old and key.stat().st_mode & 0o777 == 0o600
    assert opened(corpus_copy)[1] == "cache"


@pytest.mark.parametrize(
    "arrays",
    [
        {"key": np.array(0.5)},  # a key of the wrong type
        {"doc": np.array(3)},  # a 0-d array where a column belongs
        {"vocab_ends": np.array([10**9])},  # vocabulary ends past its text
        {"offsets": np.array([5, 2, 1])},  # postings that run backwards
    ],
)
def test_a_file_this_bot_sealed_but_damaged_is_rebuilt_not_served(
    opened, corpus_copy, tmp_path, arrays
):
    """Past the seal (as if our own write went wrong): malformed arrays still mean a
    rebuild, never a traceback or a half-read index."""
    built, _ = opened(corpus_copy)
    path = cache_path(tmp_path / "cache", corpus_copy)
    _forge(path, (tmp_path / "cache" / "secret.key").read_bytes(), **arrays)
    retriever, how = opened(corpus_copy)
    assert how == "built" and retriever.corpus == built.corpus
