"""Manifest + source documents -> paragraph chunks with citation and spoiler data.

The source files are data, kept verbatim; everything we know about them lives in
`manifest.toml` beside them. Chunking follows each document's own structure:
some separate paragraphs by blank lines, some by single newlines, and some carry
site chrome, headings and a block of short credit lines that belong together.
"""

import datetime as dt
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.core import analysis

MANIFEST = "manifest.toml"
# A chunk must fit one Discord embed field (1024) after escaping, highlighting and
# spoiler tags, with room for its citation line.
MAX_CHUNK_CHARS = 800
# A line is prose (a paragraph of its own) when it ends like a sentence and has
# this many words, or is this long whatever its ending.
_PROSE_MIN_WORDS = 6
_PROSE_ALWAYS_WORDS = 40
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"”’)\]]*\s+(?=\S)")
_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.DOTALL)


class CorpusError(Exception):
    """The corpus cannot be served as it is; the message names the file and the fix."""


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    source: str
    kind: str
    path: Path
    date: dt.date | None = None
    url: str | None = None
    spoiler_from: str | None = None


@dataclass(frozen=True)
class Chunk:
    """One passage: what retrieval ranks and what a reply quotes and cites."""

    doc: Document
    paragraph: int  # 1-based, counted over the document's passages
    part: int  # 1-based when a long paragraph was split, else 0
    text: str
    section: str | None  # the heading the passage stands under, if any
    spoiler: str | None  # why it is a spoiler ("spoiler section", a term group), or None

    @property
    def id(self) -> str:
        return f"{self.doc.id}#{self.where.removeprefix('¶')}"

    @property
    def is_spoiler(self) -> bool:
        return self.spoiler is not None

    @property
    def where(self) -> str:
        """Its place in the document: ¶3, or ¶3.2 for the second part of a split paragraph."""
        return f"¶{self.paragraph}" + (f".{self.part}" if self.part else "")

    @property
    def citation(self) -> str:
        return f"{self.doc.title} — {self.doc.source}, {self.where}"


@dataclass(frozen=True)
class Corpus:
    film: str
    topics: tuple[str, ...]
    documents: tuple[Document, ...]
    chunks: tuple[Chunk, ...]
    synonyms: tuple[tuple[str, ...], ...]  # groups of equivalent plain words/phrases
    warnings: tuple[str, ...]
    spoiler_terms: tuple[tuple[str, tuple[str, ...]], ...] = ()  # as in Manifest
    suggested: tuple[str, ...] = ()  # questions /ask's autocomplete offers

    def spoiler_group(self, text: str) -> str | None:
        """The spoiler group whose phrase `text` contains, found as chunks' are."""
        return spoiler_group(text, self.spoiler_terms)


@dataclass(frozen=True)
class Manifest:
    """What manifest.toml says: the film, its documents, and how to read them."""

    film: str
    year: int | None
    topics: tuple[str, ...]
    documents: tuple[Document, ...]
    synonyms: tuple[tuple[str, ...], ...]
    chrome: tuple[re.Pattern[str], ...]
    spoiler_terms: tuple[tuple[str, tuple[str, ...]], ...]  # (group, stemmed phrase)
    warnings: tuple[str, ...]
    suggested: tuple[str, ...] = ()

    def corpus(self, chunks: tuple[Chunk, ...]) -> Corpus:
        return Corpus(
            self.film,
            self.topics,
            self.documents,
            chunks,
            self.synonyms,
            self.warnings,
            self.spoiler_terms,
            self.suggested,
        )


# Called as (phase, done, total) while long work runs.
ProgressFn = Callable[[str, int, int], None]
# Reads a corpus file's bytes; the index cache passes one that also hashes them.
Reader = Callable[[Path], bytes]


def read_bytes(path: Path) -> bytes:
    """The file's bytes, or a CorpusError naming it when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CorpusError(
            f"{path} cannot be read ({exc.strerror}): check it exists and its permissions"
        ) from None


def load_corpus(directory: Path) -> Corpus:
    """Read and chunk a corpus directory, or raise CorpusError saying what to fix."""
    manifest = read_manifest(directory)
    return manifest.corpus(chunk_documents(manifest))


def read_manifest(directory: Path, read: Reader = read_bytes) -> Manifest:
    """The corpus directory's manifest, checked against the files it lists."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CorpusError(
            f"corpus directory {directory} does not exist: "
            "set CORPUS_DIR or --corpus to a folder with manifest.toml and the documents"
        )
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise CorpusError(f"{manifest_path} is missing: every corpus needs a manifest")
    manifest_path = inside(directory, manifest_path, MANIFEST)
    try:
        manifest = tomllib.loads(read(manifest_path).decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{manifest_path} is not valid TOML: {exc}") from None

    film = manifest.get("film")
    if not isinstance(film, dict) or not _text(film.get("title")):
        raise CorpusError(f'{manifest_path}: add a [film] table with title = "..."')
    try:
        chrome = tuple(re.compile(p, re.IGNORECASE) for p in film.get("chrome", ()))
    except re.error as exc:
        raise CorpusError(
            f"{manifest_path}: a [film] chrome pattern is not a valid regex: {exc}"
        ) from None
    spoiler_terms = tuple(
        (group, tuple(analysis.words(phrase)))
        for group, phrases in _table(manifest, "spoilers", manifest_path).items()
        for phrase in _phrases(phrases, f"[spoilers] {group}", manifest_path)
    )
    synonyms = tuple(
        _phrases(group, f"[synonyms] {name}", manifest_path)
        for name, group in _table(manifest, "synonyms", manifest_path).items()
    )
    documents = _documents(manifest, directory)
    listed = {d.path for d in documents}
    warnings = tuple(
        f"{path} has no [[documents]] entry in {MANIFEST}; skipped (add an entry to serve it)"
        for path in sorted(directory.glob("*.txt"))
        if path.resolve() not in listed
    ) + tuple(
        f"{manifest_path}: the title or source of {d.id!r} names the twist ({group}), and "
        "citations and /sources show it outside spoiler tags: reword it"
        for d in documents
        if (group := spoiler_group(f"{d.title}. {d.source}", spoiler_terms))
    )
    return Manifest(
        film=film["title"],
        year=film.get("year"),
        topics=_phrases(film.get("topics", []), "[film] topics", manifest_path),
        documents=documents,
        synonyms=synonyms,
        chrome=chrome,
        spoiler_terms=spoiler_terms,
        warnings=warnings,
        suggested=_suggested(manifest, manifest_path),
    )


def chunk_documents(
    manifest: Manifest, progress: ProgressFn | None = None, read: Reader = read_bytes
) -> tuple[Chunk, ...]:
    """Every listed document's passages, in manifest order."""
    chunks: list[Chunk] = []
    for n, doc in enumerate(manifest.documents, 1):
        chunks += _chunk_document(doc, manifest, read)
        if progress:
            progress("reading documents", n, len(manifest.documents))
    if not chunks:
        names = ", ".join(d.path.name for d in manifest.documents)
        raise CorpusError(f"{names}: no passages (only headings or site chrome); add text")
    return tuple(chunks)


def _table(manifest: dict, key: str, path: Path) -> dict:
    value = manifest.get(key, {})
    if not isinstance(value, dict):
        raise CorpusError(f"{path}: [{key}] must be a table")
    return value


def _documents(manifest: dict, directory: Path) -> tuple[Document, ...]:
    manifest_path = directory / MANIFEST
    entries = manifest.get("documents", [])
    if not isinstance(entries, list) or not entries:
        raise CorpusError(f"{manifest_path}: add at least one [[documents]] entry")
    documents: list[Document] = []
    seen: set[str] = set()
    for n, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise CorpusError(f"{manifest_path}: document #{n} must be a [[documents]] table")
        fields = ("id", "file", "title", "source", "kind")
        missing = [k for k in fields if not _text(entry.get(k))]
        if missing:
            raise CorpusError(
                f"{manifest_path}: document #{n} lacks {', '.join(missing)} "
                "(each must be text that is not blank)"
            )
        doc_id = str(entry["id"])
        if doc_id in seen:
            raise CorpusError(f"{manifest_path}: document id {doc_id!r} is used twice")
        seen.add(doc_id)
        path = directory / str(entry["file"])
        if not path.is_file():
            raise CorpusError(
                f"{path} is listed in {MANIFEST} (id {doc_id!r}) but does not exist: "
                "add the file or remove the entry"
            )
        path = inside(directory, path, f"document {doc_id!r} (file = {entry['file']!r})")
        date = entry.get("date")
        if date is not None and not isinstance(date, dt.date):
            raise CorpusError(f"{manifest_path}: {doc_id}.date must be a TOML date (2024-10-19)")
        documents.append(
            Document(
                id=doc_id,
                title=str(entry["title"]),
                source=str(entry["source"]),
                kind=str(entry["kind"]),
                path=path,
                date=date,
                url=_optional_text(entry, "url", manifest_path),
                spoiler_from=_optional_text(entry, "spoiler_from", manifest_path),
            )
        )
    files = [d.path for d in documents]
    if len(set(files)) != len(files):
        raise CorpusError(f"{manifest_path}: a file is listed by two documents")
    return tuple(documents)


SUGGESTION_MAX_CHARS = 100  # what Discord shows of an autocomplete choice


def _suggested(manifest: dict, manifest_path: Path) -> tuple[str, ...]:
    """The [[suggested]] questions, each `q = "..."`, at most 100 characters."""
    entries = manifest.get("suggested", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise CorpusError(f'{manifest_path}: write suggestions as [[suggested]] q = "..."')
    questions = []
    for n, entry in enumerate(entries, 1):
        q = entry.get("q")
        if not _text(q) or len(q) > SUGGESTION_MAX_CHARS:
            raise CorpusError(
                f"{manifest_path}: suggestion #{n} needs q = a question of 1-"
                f"{SUGGESTION_MAX_CHARS} characters"
            )
        questions.append(" ".join(q.split()))
    return tuple(questions)


def _phrases(value: object, where: str, manifest_path: Path) -> tuple[str, ...]:
    """A manifest list of words or phrases, each checked to be text."""
    if not isinstance(value, list) or not all(_text(v) for v in value):
        raise CorpusError(f'{manifest_path}: {where} must be a list of phrases, ["a", "b"]')
    return tuple(value)


def _text(value: object) -> bool:
    """Whether a manifest value is text with something in it ("  " is not a title)."""
    return isinstance(value, str) and bool(value.strip())


def _optional_text(entry: dict, key: str, manifest_path: Path) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if not _text(value):
        raise CorpusError(f"{manifest_path}: {entry['id']}.{key} must be text that is not blank")
    return value


def inside(directory: Path, path: Path, what: str) -> Path:
    """`path` with symlinks resolved, or a CorpusError when it is not a regular file
    inside `directory`.

    The corpus is served to anyone who can ask: a manifest entry "../.env", or a
    document that is a symlink to /proc/self/environ, would post the bot's token.
    """
    root = directory.resolve()
    resolved = path.resolve()
    if not resolved.is_relative_to(root) or resolved == root:
        raise CorpusError(
            f"{what} resolves to {resolved}, outside the corpus folder {root}: "
            "corpus files must be inside it (no '..', absolute paths or symlinks out)"
        )
    if not resolved.is_file():
        raise CorpusError(f"{what} is not a regular file: use a plain text file")
    return resolved


def read_text(path: Path, read: Reader = read_bytes) -> str:
    """The file's text, or a CorpusError naming it when it is not UTF-8 or is empty."""
    try:
        text = read(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"{path} is not UTF-8 (bad byte at offset {exc.start}): re-save it as UTF-8"
        ) from None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise CorpusError(f"{path} is empty: add its text or remove its manifest entry")
    return text


@dataclass
class _Unit:
    """A run of source lines that becomes one passage (before length splitting)."""

    lines: list[str]
    first_line: int
    lone: bool  # the only unit of its blank-line-separated block
    prose: bool


def _chunk_document(doc: Document, manifest: Manifest, read: Reader) -> list[Chunk]:
    text = read_text(doc.path, read)
    text = _FRONT_MATTER.sub(lambda m: "\n" * m.group().count("\n"), text)
    lines = text.split("\n")
    spoiler_line = _spoiler_line(doc, lines)

    chunks: list[Chunk] = []
    section: str | None = None
    paragraph = 0
    for kind, unit in _passages(_units(lines, _chrome_filter(doc, manifest))):
        if kind == "heading":
            section = unit.lines[0].strip()
            continue
        paragraph += 1
        in_section = spoiler_line is not None and unit.first_line >= spoiler_line
        body = "\n".join(line.strip() for line in unit.lines)
        parts = _split(body)
        for part, piece in enumerate(parts, 1 if len(parts) > 1 else 0):
            reason = (
                "spoiler section" if in_section else spoiler_group(piece, manifest.spoiler_terms)
            )
            chunks.append(Chunk(doc, paragraph, part, piece, section, reason))
    return chunks


def _spoiler_line(doc: Document, lines: list[str]) -> int | None:
    if doc.spoiler_from is None:
        return None
    for n, line in enumerate(lines):
        if line.strip() == doc.spoiler_from.strip():
            return n
    raise CorpusError(
        f"{doc.path}: spoiler_from {doc.spoiler_from!r} matches no line; "
        f"copy the heading line exactly into {MANIFEST}"
    )


def _chrome_filter(doc: Document, manifest: Manifest):
    titles = {analysis.normalize(t) for t in (manifest.film, doc.title)}
    year = f" ({manifest.year})" if manifest.year else ""

    def is_chrome(line: str) -> bool:
        norm = analysis.normalize(line.strip())
        if norm in titles or norm.removesuffix(year) in titles:
            return True
        return any(p.search(line.strip()) for p in manifest.chrome)

    return is_chrome


def _is_prose(line: str) -> bool:
    n_words = len(line.split())
    return n_words >= _PROSE_ALWAYS_WORDS or (
        n_words >= _PROSE_MIN_WORDS and line.rstrip()[-1:] in ".!?…"
    )


def _units(lines: list[str], is_chrome) -> list[_Unit]:
    """Split into blocks at blank (or chrome) lines; in a block, each prose line is a
    paragraph and each run of short lines (credits, ratings) stays together."""
    blocks: list[list[tuple[int, str]]] = [[]]
    for n, line in enumerate(lines):
        if not line.strip() or is_chrome(line):
            if blocks[-1]:
                blocks.append([])
        else:
            blocks[-1].append((n, line))
    units: list[_Unit] = []
    for block in filter(None, blocks):
        block_units: list[_Unit] = []
        for n, line in block:
            prose = _is_prose(line)
            if not prose and block_units and not block_units[-1].prose:
                block_units[-1].lines.append(line)
            else:
                block_units.append(_Unit([line], n, False, prose))
        if len(block_units) == 1:
            block_units[0].lone = True
        units.extend(block_units)
    return units


def _passages(units: list[_Unit]) -> list[tuple[str, _Unit]]:
    """Tell headings from passages, and join lone short lines to the short block after them.

    A lone one-line short unit is a heading when prose (or another heading) follows it;
    when a short block follows, it is that block's first line (a title above credits).
    """
    kinds: list[str] = [""] * len(units)
    for i in range(len(units) - 1, -1, -1):
        unit = units[i]
        nxt = kinds[i + 1] if i + 1 < len(units) else None
        is_lone_line = unit.lone and not unit.prose and len(unit.lines) == 1
        if is_lone_line and (nxt == "heading" or (nxt and units[i + 1].prose)):
            kinds[i] = "heading"
        elif is_lone_line and nxt in ("short", "join"):
            kinds[i] = "join"
        else:
            kinds[i] = "prose" if unit.prose else "short"
    out: list[tuple[str, _Unit]] = []
    pending: list[_Unit] = []
    for kind, unit in zip(kinds, units, strict=True):
        if kind == "join":
            pending.append(unit)
            continue
        if pending:
            lines = [line for p in pending for line in p.lines] + unit.lines
            unit = _Unit(lines, pending[0].first_line, False, unit.prose)
            pending = []
        out.append(("heading" if kind == "heading" else "passage", unit))
    return out


def sentences(text: str) -> list[str]:
    """Sentences of a passage (lines, for a block of short lines)."""
    out: list[str] = []
    for line in text.split("\n"):
        out.extend(s for s in _SENTENCE_END.split(line) if s.strip())
    return out


def _split(text: str) -> list[str]:
    """Split an over-long paragraph at sentence boundaries under MAX_CHUNK_CHARS."""
    if len(text) <= MAX_CHUNK_CHARS:
        return [text]
    parts: list[str] = []
    current = ""
    for sentence in sentence_spans(text):
        while len(sentence) > MAX_CHUNK_CHARS:  # one huge sentence: cut at a space
            cut = sentence.rfind(" ", 0, MAX_CHUNK_CHARS)
            cut = cut if cut > 0 else MAX_CHUNK_CHARS
            if current:
                parts.append(current.strip())
                current = ""
            parts.append(sentence[:cut].strip())
            sentence = sentence[cut:]
        if current and len(current) + len(sentence) > MAX_CHUNK_CHARS:
            parts.append(current.strip())
            current = ""
        current += sentence
    if current.strip():
        parts.append(current.strip())
    return parts


def sentence_spans(text: str) -> list[str]:
    """Sentences with their trailing whitespace kept, so joining them restores the text."""
    spans: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        spans.append(text[start : match.end()])
        start = match.end()
    spans.append(text[start:])
    return [s for s in spans if s]


def spoiler_group(text: str, spoiler_terms: tuple[tuple[str, tuple[str, ...]], ...]) -> str | None:
    """The group of the first spoiler phrase `text` contains (stemmed, in order), or None."""
    if not spoiler_terms:
        return None
    words = analysis.words(text)
    present = set(words)
    for group, phrase in spoiler_terms:
        if present.issuperset(phrase) and analysis.contains_phrase(words, list(phrase)):
            return group
    return None
