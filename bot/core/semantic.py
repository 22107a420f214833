"""The semantic half of retrieval: chunk embeddings, and a question's cosine to each.

The vectors are unit length (the model's graph normalises them), so a matrix-vector
product gives every chunk's cosine similarity to the question. They are computed when
the index is built, with progress for long builds, and kept in the index cache; a
question costs one embedding and nothing else is embedded while answering.

The sentences' vectors, which pick each passage's best sentence, are built too for a
corpus of up to SENTENCES_MAX_CHUNKS passages (about twice the passages' embedding
time); a larger corpus picks best sentences by question words alone.
"""

from collections.abc import Sequence

import numpy as np

from bot.core.corpus import Chunk, ProgressFn, sentences
from bot.core.embedding import DIMENSIONS, Embedder

EMBED_BATCH = 64  # texts per progress step
SENTENCES_MAX_CHUNKS = 5_000


def _checked(vectors: np.ndarray, what: str) -> np.ndarray:
    if vectors.ndim != 2 or vectors.shape[1] != DIMENSIONS or vectors.dtype != np.float32:
        raise ValueError(f"{what} vectors must be float32 [n, {DIMENSIONS}]")
    if not np.isfinite(vectors).all():
        raise ValueError(f"{what} vectors hold values that are not numbers")
    return vectors


class SentenceVectors:
    """Each chunk's sentences' vectors: rows offsets[i]:offsets[i + 1] are chunk i's."""

    def __init__(self, vectors: np.ndarray, offsets: np.ndarray) -> None:
        self.vectors = _checked(vectors, "sentence")
        if offsets.ndim != 1 or offsets[-1] != len(vectors) or (np.diff(offsets) < 0).any():
            raise ValueError("sentence offsets do not fit the sentence vectors")
        self.offsets = offsets

    def of(self, chunk_id: int) -> np.ndarray:
        return self.vectors[self.offsets[chunk_id] : self.offsets[chunk_id + 1]]


class DenseIndex:
    def __init__(self, vectors: np.ndarray, sentences: SentenceVectors | None = None) -> None:
        self.vectors = _checked(vectors, "chunk")
        if sentences is not None and len(sentences.offsets) != len(vectors) + 1:
            raise ValueError("sentence vectors are for another set of chunks")
        self.sentences = sentences

    @classmethod
    def build(
        cls, chunks: Sequence[Chunk], embedder: Embedder, progress: ProgressFn | None = None
    ) -> "DenseIndex":
        vectors = _embed_all(embedder, [c.text for c in chunks], "embedding passages", progress)
        if len(chunks) > SENTENCES_MAX_CHUNKS:
            return cls(vectors)
        split = [sentences(c.text) for c in chunks]
        offsets = np.concatenate(([0], np.cumsum([len(s) for s in split]))).astype(np.int64)
        texts = [s for chunk in split for s in chunk]
        return cls(vectors, SentenceVectors(
            _embed_all(embedder, texts, "embedding sentences", progress), offsets
        ))  # fmt: skip

    def cosines(self, question_vector: np.ndarray) -> np.ndarray:
        """Every chunk's cosine similarity to the question, in chunk order."""
        return self.vectors @ question_vector

    def top(self, cosines: np.ndarray, k: int) -> np.ndarray:
        """The ids of the k chunks most similar to the question (in no order)."""
        if len(cosines) <= k:
            return np.arange(len(cosines))
        return np.argpartition(cosines, len(cosines) - k)[len(cosines) - k :]


def _embed_all(
    embedder: Embedder, texts: Sequence[str], phase: str, progress: ProgressFn | None
) -> np.ndarray:
    vectors = np.empty((len(texts), DIMENSIONS), np.float32)
    for start in range(0, len(texts), EMBED_BATCH):
        batch = texts[start : start + EMBED_BATCH]
        vectors[start : start + len(batch)] = embedder.embed(batch)
        if progress:
            progress(phase, start + len(batch), len(texts))
    return vectors
