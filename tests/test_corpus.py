import pytest

from bot.config import DEFAULT_CORPUS
from bot.core.corpus import MAX_CHUNK_CHARS, CorpusError, load_corpus
from tests.conftest import entry


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(DEFAULT_CORPUS)


def chunks_of(corpus, doc_id):
    return [c for c in corpus.chunks if c.doc.id == doc_id]


def test_corpus_files_are_the_seed_documents_verbatim():
    seeds = DEFAULT_CORPUS.parent.parent / "shared" / "seeds"
    if not seeds.is_dir():
        pytest.skip("../shared/seeds is not beside this checkout")
    shipped = {p.read_bytes() for p in DEFAULT_CORPUS.glob("*.txt")}
    assert shipped == {p.read_bytes() for p in seeds.glob("*.txt")}


def test_every_document_yields_passages_with_citations(corpus):
    assert len(corpus.documents) == 5
    for doc in corpus.documents:
        chunks = chunks_of(corpus, doc.id)
        assert chunks, doc.id
        assert [c.paragraph for c in chunks] == sorted(c.paragraph for c in chunks)
        assert all(doc.title in c.citation and f"¶{c.paragraph}" in c.citation for c in chunks)


def test_site_chrome_and_repeated_titles_are_not_passages(corpus):
    texts = [c.text for c in corpus.chunks]
    for chrome in ("6 min read", "Published: | Updated:", "| Entertainment |", "Explore the"):
        assert not any(chrome in t for t in texts), chrome
    assert not any(t.strip() in ("Look Back", "Look Back (2024)") for t in texts)


def test_blank_line_and_single_newline_documents_both_split_into_paragraphs(corpus):
    assert len(chunks_of(corpus, "smash-hit")) >= 6  # single newlines
    assert len(chunks_of(corpus, "viewer-notes")) == 5  # blank lines, front matter dropped
    assert not any("created:" in c.text for c in corpus.chunks)


def test_credits_block_is_one_unmarked_chunk(corpus):
    [credits] = [c for c in corpus.chunks if "Director: Kiyotaka Oshiyama" in c.text]
    for line in ("ルックバック", "58 min", "Cast: Yuumi Kawai", "Drama Animation", "Box Office"):
        assert line in credits.text
    assert not credits.is_spoiler


def test_long_paragraphs_split_at_sentences_under_the_cap(corpus):
    split = [c for c in corpus.chunks if c.part]
    assert split
    assert all(len(c.text) <= MAX_CHUNK_CHARS for c in corpus.chunks)
    assert all(c.text.rstrip()[-1] in '.!?”"' for c in split)


@pytest.mark.parametrize(
    "phrase",
    [
        "The central tragic twist",  # the ending analysis
        "grief-induced fantasy",  # the alternative interpretations
        "the axe attack on Kyomoto",  # the attack
        "Kyomoto has been murdered",  # the death
        "an imagined Fujino",  # the imagined timeline
        "Fujino imagines what it would have been like",
    ],
)
def test_twist_passages_are_marked_as_spoilers(corpus, phrase):
    [chunk] = [c for c in corpus.chunks if phrase in c.text]
    assert chunk.is_spoiler


def test_spoiler_free_passages_stay_unmarked(corpus):
    for phrase in ("directed by Kiyotaka Oshiyama", "Haruka Nakamura", "graduation certificate"):
        [chunk] = [c for c in corpus.chunks if phrase in c.text]
        assert not chunk.is_spoiler, phrase


def test_a_file_without_an_entry_is_skipped_with_a_warning(make_corpus):
    directory = make_corpus(
        {"a.txt": "A long enough paragraph about the film and its music.", "stray.txt": "x"},
        entry("a", "a.txt"),
    )
    corpus = load_corpus(directory)
    assert [c.doc.id for c in corpus.chunks] == ["a"]
    assert any("stray.txt" in w and "no [[documents]] entry" in w for w in corpus.warnings)


@pytest.mark.parametrize(
    ("files", "entries", "message"),
    [
        ({}, entry("a", "missing.txt"), "missing.txt is listed"),
        ({"a.txt": b"caf\xe9 au lait is good."}, entry("a", "a.txt"), "a.txt is not UTF-8"),
        ({"a.txt": "  \n\n"}, entry("a", "a.txt"), "a.txt is empty"),
        ({"a.txt": "Text here."}, entry("a", "a.txt") + entry("a", "a.txt"), "used twice"),
        (
            {"a.txt": "Text here, long enough."},
            entry("a", "a.txt", 'spoiler_from = "No such heading"'),
            "matches no line",
        ),
    ],
)
def test_bad_corpus_files_fail_with_a_message_naming_the_file(make_corpus, files, entries, message):
    with pytest.raises(CorpusError, match=message):
        load_corpus(make_corpus(files, entries))


def test_a_manifest_syntax_error_names_the_manifest(make_corpus):
    directory = make_corpus({}, "[[documents]\n")
    with pytest.raises(CorpusError, match=r"manifest\.toml is not valid TOML"):
        load_corpus(directory)


def test_a_missing_corpus_directory_says_how_to_point_at_one(tmp_path):
    with pytest.raises(CorpusError, match="CORPUS_DIR"):
        load_corpus(tmp_path / "nowhere")


def test_spoiler_section_starts_at_the_marked_heading(make_corpus):
    text = (
        "An opening paragraph that tells the premise well.\n\n"
        "Ending Explained\n\n"
        "The final paragraph reveals what the ending means for them.\n"
    )
    directory = make_corpus(
        {"a.txt": text}, entry("a", "a.txt", 'spoiler_from = "Ending Explained"')
    )
    first, last = load_corpus(directory).chunks
    assert not first.is_spoiler
    assert last.spoiler == "spoiler section"
    assert last.section == "Ending Explained"


def test_a_10_mb_document_is_chunked_under_the_cap_and_served(make_corpus):
    from bot.core.answer import answer_question
    from bot.core.retrieval import Retriever

    sentences = (DEFAULT_CORPUS / "review-smash-hit.txt").read_text(encoding="utf-8").split(". ")
    paragraphs, size, n = [], 0, 0
    while size < 10_000_000:
        paragraph = ". ".join(sentences[(n + i) % len(sentences)] for i in range(8)) + "."
        paragraphs.append(paragraph)
        size += len(paragraph.encode()) + 2
        n += 1
    paragraphs.append("The zebrafish composer is a made-up fact found only here.")
    directory = make_corpus({"big.txt": "\n\n".join(paragraphs)}, entry("big", "big.txt"))
    corpus = load_corpus(directory)
    assert len(corpus.chunks) >= len(paragraphs)
    assert all(len(c.text) <= MAX_CHUNK_CHARS for c in corpus.chunks)
    answer = answer_question(Retriever(corpus), "zebrafish composer", spoilers=False)
    assert "zebrafish" in answer.passages[0].chunk.text


SECRET = "DISCORD_TOKEN=not.a.real.token"


@pytest.fixture
def nested(tmp_path):
    """A corpus folder with a secret file beside it, outside the corpus."""
    (tmp_path / ".env").write_text(SECRET)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("A paragraph about the film that is long enough to keep.")
    return corpus


def _manifest(corpus, entries: str) -> None:
    head = '[film]\ntitle = "Test Film"\n'
    (corpus / "manifest.toml").write_text(head + entries, encoding="utf-8")


@pytest.mark.parametrize("file", ["../.env", "../../../../../../etc/passwd", "/etc/passwd"])
def test_a_manifest_entry_outside_the_corpus_folder_is_refused(nested, file):
    _manifest(nested, entry("a", "a.txt") + entry("leak", file))
    with pytest.raises(CorpusError, match=r"document 'leak' .* outside the corpus folder"):
        load_corpus(nested)


@pytest.mark.parametrize("target", ["../.env", "/proc/self/environ"])
def test_a_document_that_is_a_symlink_out_of_the_corpus_is_refused(nested, target):
    (nested / "notes.txt").symlink_to(target)
    _manifest(nested, entry("a", "a.txt") + entry("notes", "notes.txt"))
    with pytest.raises(CorpusError, match=r"document 'notes' .* outside the corpus folder"):
        load_corpus(nested)


def test_a_manifest_that_is_a_symlink_out_of_the_corpus_is_refused(nested, tmp_path):
    outside = tmp_path / "manifest.toml"
    outside.write_text('[film]\ntitle = "Test Film"\n' + entry("a", "a.txt"))
    (nested / "manifest.toml").symlink_to(outside)
    with pytest.raises(CorpusError, match="outside the corpus folder"):
        load_corpus(nested)


def test_symlinks_that_stay_inside_the_corpus_are_served(nested):
    (nested / "sub").mkdir()
    (nested / "sub" / "b.txt").write_text("Another paragraph about the film, also long enough.")
    (nested / "b.txt").symlink_to("sub/b.txt")
    _manifest(nested, entry("a", "a.txt") + entry("b", "b.txt"))
    assert [c.doc.id for c in load_corpus(nested).chunks] == ["a", "b"]


def test_a_fifo_listed_as_a_document_is_refused_without_blocking(nested):
    import os

    os.mkfifo(nested / "pipe.txt")
    _manifest(nested, entry("a", "a.txt") + entry("pipe", "pipe.txt"))
    with pytest.raises(CorpusError, match=r"pipe\.txt"):
        load_corpus(nested)


@pytest.mark.parametrize(
    ("head", "entries", "message"),
    [
        ('[film]\ntitle = "Film"\n', entry("a", "a.txt").replace('"a title"', '"   "'), "title"),
        ('[film]\ntitle = "   "\n', entry("a", "a.txt"), r"\[film\] table"),
        ('[film]\ntitle = "Film"\n', entry("a", "a.txt", 'url = "  "'), "a.url"),
        ('[film]\ntitle = "Film"\n[spoilers]\nx = "axe"\n', entry("a", "a.txt"), "list"),
        ('[film]\ntitle = "Film"\ntopics = [1]\n', entry("a", "a.txt"), "topics"),
        ('documents = [1]\n[film]\ntitle = "Film"\n', "", "must be a"),
    ],
)
def test_blank_or_mistyped_manifest_values_are_refused(nested, head, entries, message):
    (nested / "manifest.toml").write_text(head + entries, encoding="utf-8")
    with pytest.raises(CorpusError, match=message):
        load_corpus(nested)


def test_a_title_that_names_the_twist_is_warned_about(make_corpus):
    directory = make_corpus(
        {"a.txt": "A long enough paragraph about the film and its music."},
        entry("a", "a.txt").replace('title = "a title"', 'title = "The secret twin revealed"'),
    )
    warnings = load_corpus(directory).warnings
    assert any("'a' names the twist (twist)" in w for w in warnings), warnings
