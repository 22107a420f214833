"""The semantic half of retrieval: chunk embeddings, and a question's cosine to each.

The vectors are unit length (the model's graph normalises them), so a matrix-vector
product gives every chunk's cosine similarity to the question. They are computed when
the index is built, with progress for long builds, and kept in the index cache.
"""

from collections.abc import Sequence

import numpy as np

from bot.core.corpus import Chunk, ProgressFn
from bot.core.embedding import DIMENSIONS, Embedder

EMBED_BATCH = 64  # chunks per progress step


class DenseIndex:
    def __init__(self, vectors: np.ndarray) -> None:
        if vectors.ndim != 2 or vectors.shape[1] != DIMENSIONS or vectors.dtype != np.float32:
            raise ValueError(f"chunk vectors must be float32 [n, {DIMENSIONS}]")
        if not np.isfinite(vectors).all():
            raise ValueError("chunk vectors hold values that are not numbers")
        self.vectors = vectors

    @classmethod
    def build(
        cls, chunks: Sequence[Chunk], embedder: Embedder, progress: ProgressFn | None = None
    ) -> "DenseIndex":
        vectors = np.empty((len(chunks), DIMENSIONS), np.float32)
        for start in range(0, len(chunks), EMBED_BATCH):
            batch = chunks[start : start + EMBED_BATCH]
            vectors[start : start + len(batch)] = embedder.embed([c.text for c in batch])
            if progress:
                progress("embedding passages", start + len(batch), len(chunks))
        return cls(vectors)

    def cosines(self, question_vector: np.ndarray) -> np.ndarray:
        """Every chunk's cosine similarity to the question, in chunk order."""
        return self.vectors @ question_vector

    def top(self, cosines: np.ndarray, k: int) -> np.ndarray:
        """The ids of the k chunks most similar to the question (in no order)."""
        if len(cosines) <= k:
            return np.arange(len(cosines))
        return np.argpartition(cosines, len(cosines) - k)[len(cosines) - k :]
