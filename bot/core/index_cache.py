"""The chunked corpus and its built index on disk, so a large corpus starts in a second.

Building takes ~10 s at 100k chunks (pure-Python analysis of every word); loading the
arrays back takes well under 2 s. A cache file belongs to one corpus directory and
records the key it was built under: a hash of the manifest, every listed document,
the code that turns them into chunks and terms (this package's corpus, analysis and
retrieval modules, this one, and the stemmers' versions). Any change means a rebuild.

The file is plain arrays (numpy .npz, loaded with allow_pickle=False, so it is never
code), written to a temporary name and renamed into place, and sealed: it starts
with an HMAC of the rest under a secret key that only this bot's user can read
(`secret.key` in the cache folder). The key of a build is made of inputs anyone can
read, so without the seal a forged file could serve text that is in no corpus file
or clear a passage's spoiler mark. A file whose seal does not verify is never
parsed; it, and anything else that cannot be read, is rebuilt and replaced. A cache
that cannot be written only costs the next start-up its speed.
"""

import hashlib
import hmac
import logging
import os
import secrets
import stat
import tempfile
import time
from collections.abc import Sequence
from functools import cache
from importlib.metadata import version
from itertools import pairwise
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

from bot.core import analysis, corpus, lexical, retrieval, semantic
from bot.core.corpus import (
    MANIFEST,
    Chunk,
    Corpus,
    Manifest,
    ProgressFn,
    Reader,
    chunk_documents,
    read_bytes,
    read_manifest,
)
from bot.core.embedding import Embedder, english_words, model_digest
from bot.core.lexical import PostingsIndex
from bot.core.retrieval import Retriever, Semantic, all_index_terms
from bot.core.semantic import DenseIndex, SentenceVectors

log = logging.getLogger("lookback")


class Built(NamedTuple):
    """What a build makes and the cache keeps."""

    corpus: Corpus
    index: PostingsIndex
    vectors: DenseIndex | None  # the semantic half's, if the model was run over the chunks
    model: str  # the sha256 of the model the vectors come from ("" without vectors)


def open_retriever(
    corpus_dir: Path,
    cache_dir: Path,
    progress: ProgressFn | None = None,
    *,
    semantic: bool = True,
    embed_limit: int | None = None,
) -> Retriever:
    """The corpus's retriever: from the cache when it is current, else built (and cached).

    With `semantic`, the chunks' vectors come from the cache, or are computed (minutes
    for a large corpus) unless there are more than `embed_limit` chunks: then the
    retriever is lexical, and a later call without the limit (a background reload)
    computes them.
    """
    sources = SourceDigests(corpus_dir)
    manifest = read_manifest(corpus_dir, sources.read)
    path = cache_path(cache_dir, corpus_dir)
    seal = _seal_key(Path(cache_dir))
    key = sources.key(manifest)
    built = None
    if seal is not None:
        try:
            built = _read(path, seal, key, manifest)
        except FileNotFoundError:
            pass
        except Exception as exc:  # whatever is wrong with the file, it is rebuilt
            log.warning("index cache %s is unreadable (%s); rebuilding it", path, exc)
    changed = built is None
    if built is None:
        built = _build(manifest, progress, sources.read)
        # Keyed by the bytes the build read: a document edited since the check above
        # is cached as the text it now holds, not under its old contents' key.
        key = sources.key(manifest)
    else:
        log.info("loaded %d passages from the index cache %s", len(built.corpus.chunks), path)
    embedder = None
    if semantic:
        stale = built.model != model_digest()
        n = len(built.corpus.chunks)
        if stale and embed_limit is not None and n > embed_limit:
            log.warning(
                "%d passages have no vectors yet: answering with BM25 alone until they are "
                "computed (about %d minutes)",
                n,
                n // EMBED_RATE // 60 + 1,
            )
        else:  # the model is loaded only when it will be used
            embedder = Embedder()
            if stale:
                built = _embed(built, embedder, progress)
                changed = True
    if changed and seal is not None:
        try:
            _write(path, seal, key, built)
        except OSError as exc:
            log.warning("could not write the index cache %s (%s); next start rebuilds", path, exc)
    half = None
    if embedder and built.vectors is not None:
        half = Semantic(embedder, built.vectors)
    retriever = Retriever(built.corpus, index=built.index, semantic=half, english=english_stems())
    retriever.key = key
    return retriever


# Passages a second the model embeds on one core here (40-120-word passages, int8); for
# the estimate in the log only.
EMBED_RATE = 80
# Passages embedded before the bot or the CLI answers (with their sentences, about 30 s
# the first time); a larger corpus answers with BM25 alone until its vectors are
# computed, in the background, and cached.
EMBED_AT_START = 1_000


@cache
def english_stems() -> frozenset[str]:
    """The stems of English words the model knows: never taken for typos."""
    return frozenset(map(analysis.stem, english_words()))


def _build(manifest: Manifest, progress: ProgressFn | None, read: Reader) -> Built:
    start = time.perf_counter()
    chunks = chunk_documents(manifest, progress, read)
    index = PostingsIndex.build(all_index_terms(chunks, progress))
    seconds = time.perf_counter() - start
    log.info("indexed %d passages in %.1f s", len(chunks), seconds)
    return Built(manifest.corpus(chunks), index, None, "")


def _embed(built: Built, embedder: Embedder, progress: ProgressFn | None) -> Built:
    start = time.perf_counter()
    vectors = DenseIndex.build(built.corpus.chunks, embedder, progress)
    seconds = time.perf_counter() - start
    log.info("embedded %d passages in %.1f s", len(built.corpus.chunks), seconds)
    return built._replace(vectors=vectors, model=embedder.model_digest)


def cache_path(cache_dir: Path, corpus_dir: Path) -> Path:
    """One file per corpus directory, so a rebuild replaces its stale predecessor."""
    where = hashlib.sha256(str(Path(corpus_dir).resolve()).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"index-{where}.npz"


class SourceDigests:
    """Hashes of the corpus files as they were last read, for the cache key."""

    def __init__(self, corpus_dir: Path) -> None:
        self.manifest_path = (Path(corpus_dir) / MANIFEST).resolve()
        self._digests: dict[Path, bytes] = {}

    def read(self, path: Path) -> bytes:
        data = read_bytes(path)
        self._digests[path] = hashlib.sha256(data).digest()
        return data

    def key(self, manifest: Manifest) -> str:
        """A hash of everything the chunks and index are made from.

        Files not read yet are read now, one at a time; the rest count as they were
        read, so the manifest counts as parsed and a document as last chunked.
        """
        digest = hashlib.sha256(f"{version('snowballstemmer')} {version('PyStemmer')}".encode())
        modules = (analysis, corpus, lexical, semantic, retrieval)
        code = [Path(m.__file__) for m in modules] + [Path(__file__)]
        for source in code:
            digest.update(hashlib.sha256(source.read_bytes()).digest())
        for path in (self.manifest_path, *(d.path for d in manifest.documents)):
            if path not in self._digests:
                self.read(path)
            digest.update(self._digests[path])
        return digest.hexdigest()


SEAL_KEY_FILE = "secret.key"
_SEAL_BYTES = 32  # an HMAC-SHA256 key, and the seal at the start of each cache file


def _seal_key(cache_dir: Path) -> bytes | None:
    """This cache folder's secret, made on first use; None when it cannot be had.

    The file must be this user's and readable by no one else: one that another user
    could have written or read is replaced, so every cache sealed with it is rebuilt.
    """
    path = cache_dir / SEAL_KEY_FILE
    try:
        key = _read_private(path)
        if key is None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=cache_dir, suffix=".tmp", delete=False) as f:
                f.write(secrets.token_bytes(_SEAL_BYTES))  # mode 0600, as mkstemp makes it
            try:
                os.replace(f.name, path)
            finally:
                if os.path.exists(f.name):
                    os.unlink(f.name)
            key = _read_private(path)
    except OSError as exc:
        log.warning("cannot keep the index cache in %s (%s); building every time", cache_dir, exc)
        return None
    return key


def _read_private(path: Path) -> bytes | None:
    """The key file's bytes if it is a regular file of ours that only we can read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError:  # a symlink (ELOOP), or unreadable: make a new one
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        mine = info.st_uid == os.geteuid() and not info.st_mode & 0o077
        key = f.read(_SEAL_BYTES + 1)
    if stat.S_ISREG(info.st_mode) and mine and len(key) == _SEAL_BYTES:
        return key
    return None


def _read(path: Path, seal: bytes, key: str, manifest: Manifest) -> Built | None:
    """The cached retriever, or None when the file was built from something else.

    The seal is checked over the whole file before any of it is parsed, on the one
    open file, so a file swapped in meanwhile is not what gets parsed.
    """
    with path.open("rb") as raw:
        stored = raw.read(_SEAL_BYTES)
        mac = hmac.new(seal, digestmod=hashlib.sha256)
        while block := raw.read(1 << 20):
            mac.update(block)
        if not hmac.compare_digest(stored, mac.digest()):
            raise ValueError("its seal does not match: not written by this bot")
        raw.seek(_SEAL_BYTES)
        return _parse(raw, key, manifest)


def peek(path: Path, name: str) -> np.ndarray:
    """One array of a cache file, its seal unchecked: for benchmarks and tests, never
    for serving."""
    with path.open("rb") as raw:
        raw.seek(_SEAL_BYTES)
        with np.load(raw, allow_pickle=False) as f:
            return f[name]


def _parse(raw: BinaryIO, key: str, manifest: Manifest) -> Built | None:
    with np.load(raw, allow_pickle=False) as f:
        if str(f["key"]) != key:
            return None
        sections = _decode(f["section"], _unpack(f["sections"], f["sections_ends"]))
        spoilers = _decode(f["spoiler"], _unpack(f["spoilers"], f["spoilers_ends"]))
        texts = _unpack(f["text"], f["text_ends"])
        columns = zip(
            f["doc"].tolist(),
            f["paragraph"].tolist(),
            f["part"].tolist(),
            texts,
            sections,
            spoilers,
            strict=True,
        )
        docs = manifest.documents
        chunks = tuple(Chunk(docs[d], p, q, t, s, x) for d, p, q, t, s, x in columns)
        index = PostingsIndex(
            _unpack(f["vocab"], f["vocab_ends"]),
            f["offsets"],
            f["doc_ids"],
            f["weights"],
            f["idf"],
            len(chunks),
        ).check()
        model = str(f["model"])
        sentences = None
        if model and len(f["sentence_offsets"]):
            sentences = SentenceVectors(f["sentence_vectors"], f["sentence_offsets"])
        vectors = DenseIndex(f["vectors"], sentences) if model else None
    if vectors is not None and len(vectors.vectors) != len(chunks):
        raise ValueError("the cache holds vectors for another set of passages")
    return Built(manifest.corpus(chunks), index, vectors, model)


def _write(path: Path, seal: bytes, key: str, built: Built) -> None:
    chunks, index = built.corpus.chunks, built.index
    sentences = built.vectors.sentences if built.vectors else None
    doc_number = {doc.id: n for n, doc in enumerate(built.corpus.documents)}
    section, sections = _encode([c.section for c in chunks])
    spoiler, spoilers = _encode([c.spoiler for c in chunks])
    arrays = {
        "key": np.array(key),
        "doc": np.array([doc_number[c.doc.id] for c in chunks], np.int32),
        "paragraph": np.array([c.paragraph for c in chunks], np.int32),
        "part": np.array([c.part for c in chunks], np.int32),
        "section": section,
        "spoiler": spoiler,
        **_pack("text", [c.text for c in chunks]),
        **_pack("sections", sections),
        **_pack("spoilers", spoilers),
        **_pack("vocab", list(index.vocab)),
        "offsets": index.offsets,
        "doc_ids": index.doc_ids,
        "weights": index.weights,
        "idf": index.idf,
        "model": np.array(built.model),
        "vectors": built.vectors.vectors if built.vectors else np.empty((0, 0), np.float32),
        "sentence_vectors": sentences.vectors if sentences else np.empty((0, 0), np.float32),
        "sentence_offsets": sentences.offsets if sentences else np.empty(0, np.int64),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
        try:
            f.write(bytes(_SEAL_BYTES))  # the seal's place, filled in once the rest is known
            np.savez(f, **arrays)
            f.flush()
            f.seek(_SEAL_BYTES)
            mac = hmac.new(seal, digestmod=hashlib.sha256)
            while block := f.read(1 << 20):
                mac.update(block)
            f.seek(0)
            f.write(mac.digest())
        except BaseException:
            os.unlink(f.name)
            raise
    os.replace(f.name, path)


def _encode(values: Sequence[str | None]) -> tuple[np.ndarray, list[str]]:
    """Each value as its place in a table of the distinct ones; None as -1."""
    table: dict[str, int] = {}
    codes = [-1 if v is None else table.setdefault(v, len(table)) for v in values]
    return np.array(codes, np.int32), list(table)


def _decode(codes: np.ndarray, table: list[str]) -> list[str | None]:
    return [None if c < 0 else table[c] for c in codes.tolist()]


def _pack(name: str, strings: Sequence[str]) -> dict[str, np.ndarray]:
    """Strings as one UTF-8 blob and where each ends (in characters of the decoded blob)."""
    blob = np.frombuffer("".join(strings).encode(), np.uint8)
    return {name: blob, f"{name}_ends": np.cumsum([len(s) for s in strings], dtype=np.int64)}


def _unpack(blob: np.ndarray, ends: np.ndarray) -> list[str]:
    text = blob.tobytes().decode()
    bounds = [0, *ends.tolist()]
    if bounds[-1] != len(text) or any(a > b for a, b in pairwise(bounds)):
        raise ValueError("packed strings do not fit their text")
    return [text[a:b] for a, b in pairwise(bounds)]
