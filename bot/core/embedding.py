"""Sentence embeddings, offline: the shipped int8 all-MiniLM-L6-v2 run by onnxruntime.

The model in ``bot/model/`` is built by ``tools/build_model.py`` (see ``bot/model/NOTICE``). Its
graph already does mean pooling and L2 normalisation, so all this module does is tokenise, pad
and batch: no torch, no model hub, no network.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

MODEL_DIR = Path(__file__).resolve().parent.parent / "model"
MODEL_FILE = "minilm-l6-v2-int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
# sentence-transformers' max_seq_length for this model; longer texts are cut, as it does.
MAX_TOKENS = 256
DIMENSIONS = 384


class Embedder:
    """Turns texts into unit-length float32 vectors: a dot product is their cosine similarity.

    One instance holds an onnxruntime session (about 0.15 s to create, after 0.2 s importing
    onnxruntime) and is safe to share: ``InferenceSession.run`` may be called from several threads.
    """

    def __init__(
        self, model_dir: Path | str = MODEL_DIR, *, threads: int = 1, batch_size: int = 1
    ) -> None:
        """``threads`` is onnxruntime's intra-op pool: 1 leaves the other core to the bot; 2
        helps bulk indexing (about 1.3x here), not single short questions.

        ``batch_size`` defaults to 1 on measurement: on one thread, 40-120-word passages run at
        about 85/s one at a time against about 60/s in batches of 32 (the activations of a big
        batch outgrow the CPU caches). And int8 dynamic quantisation takes its activation ranges
        over the whole batch, so batched texts shift each other's vectors (cosine 0.97-1.0);
        alone, a text always gets the same vector, which stored vectors need. Larger batches
        are sorted by length to limit padding.
        """
        # Imported here: a lexical-only bot (RETRIEVAL=lexical) never pays for them.
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_dir = Path(model_dir)
        self.model_path = model_dir / MODEL_FILE
        self.batch_size = batch_size
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(self.model_path), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER_FILE))
        # The upstream tokenizer.json pads every text to 128 tokens and cuts at 128; drop both:
        # texts are cut where sentence-transformers cuts them, and padded per batch below.
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()

    @property
    def model_digest(self) -> str:
        return model_digest(self.model_path.parent)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return a float32 array [len(texts), 384] of L2-normalised embeddings, in input order.

        Texts longer than 256 tokens are cut there, as sentence-transformers does.
        """
        if isinstance(texts, str):  # a str is a Sequence[str] too: one vector per character
            raise TypeError("embed() takes a sequence of texts, not one str")
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        if not texts:
            return out
        ids = [e.ids for e in self._tokenizer.encode_batch(list(texts))]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            out[rows] = self._run([ids[i] for i in rows])
        return out

    def _run(self, batch: list[list[int]]) -> np.ndarray:
        width = max(len(seq) for seq in batch)
        input_ids = np.zeros((len(batch), width), dtype=np.int64)  # 0 is [PAD]
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, seq in enumerate(batch):
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        feed = {"input_ids": input_ids, "attention_mask": mask}
        return self._session.run(None, feed)[0]


@cache
def model_digest(model_dir: Path = MODEL_DIR) -> str:
    """sha256 of the .onnx file: part of any cache key for stored vectors. Worked out once
    a process: it is 23 MB, and every reload asks whether its vectors are current."""
    digest = hashlib.sha256()
    with (Path(model_dir) / MODEL_FILE).open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def english_words(model_dir: Path | str = MODEL_DIR) -> frozenset[str]:
    """The whole English words of the model's vocabulary (WordPiece: about 20,000 of its
    30,522 entries), for telling a real word from a typo. Read as JSON: no model needed."""
    vocab = json.loads((Path(model_dir) / TOKENIZER_FILE).read_text(encoding="utf-8"))
    return frozenset(w for w in vocab["model"]["vocab"] if w.isalpha() and w.isascii())
