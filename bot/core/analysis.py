"""The one analyzer: corpus text and questions become terms the same way.

Anything that compares a question with the corpus (retrieval, spoiler terms,
synonyms, highlighting) goes through here, so "Oshiyama." in a paragraph and
"oshiyama" in a question always meet.
"""

import itertools
import re
import unicodedata
from functools import cache, lru_cache

import snowballstemmer

# A word is a run of letters/digits, optionally joined by apostrophes ("didn't").
_WORD = re.compile(r"\w+(?:'\w+)*")
# Links and Discord mention markup carry no words a passage could match.
_NOISE = re.compile(r"https?://\S+|<(?:@[!&]?|#)\d+>|@(?:everyone|here)\b", re.IGNORECASE)
_NOISE_MARKS = ("/", "<", "@")  # text without these has no noise: skip the regex
# Han, Hiragana and Katakana have no spaces between words: index them as
# overlapping character bigrams, as Lucene's CJK analyzer does.
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]+")

# A short English stop list (Lucene's, plus question words, contractions with and
# without their apostrophe, and the light verbs of chat): members ask "whats it
# like", "who", "how", and those words say nothing about a passage. A word is
# dropped when it or its stem is listed.
STOPWORDS = frozenset(
    """
    a an and are as at be been but by did do does doing for from had has have he her him his
    how i if in into is it its it's me my of on or our she so such than that the their them
    then there these they this those to too was we were what when where which who whom why
    will with would you your can could should about any some just also very really
    i'm i've i'd you're don't didn't doesn't isn't wasn't aren't weren't won't can't
    im ive id youre dont didnt doesnt isnt wasnt arent werent cant
    whats whos hows wheres whens whys thats theres
    say said says tell told know think get got give gave go goes going went come comes like
    happen happens happened mean means thing things much many tho lol pls please
    myself yourself himself herself itself ourselves themselves up down out off over again
    more most other others only same own each both all no not nor here once
    """.split()
)

_stemmer = snowballstemmer.stemmer("english")


def normalize(text: str) -> str:
    """Fold width, case and apostrophes; drop invisible format characters (zero-width etc.)."""
    if not text.isascii():  # ASCII has no width forms or invisible characters
        text = _invisible().sub("", unicodedata.normalize("NFKC", text))
    return text.casefold().replace("\u2019", "'").replace("\u2018", "'")


@cache
def _invisible() -> re.Pattern[str]:
    """Matches format characters (Cf): zero-width, bidi marks, tags (planes 0, 1, 14 only)."""
    planes = itertools.chain(range(0x20000), range(0xE0000, 0xE1000))
    codes = [c for c in planes if unicodedata.category(chr(c)) == "Cf"]
    ranges: list[list[int]] = []
    for c in codes:  # as ranges: a class of single characters is many times slower
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    body = "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
    return re.compile(f"[{body}]")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Snowball (Porter2) stem; cached because corpus vocabularies are Zipf-shaped."""
    if _CJK.search(word):
        return word
    return _stemmer.stemWord(word)


def surface_words(text: str) -> list[str]:
    text = normalize(text)
    if any(mark in text for mark in _NOISE_MARKS):
        text = _NOISE.sub(" ", text)
    if text.isascii() or not _CJK.search(text):
        return _WORD.findall(text)
    out: list[str] = []
    for word in _WORD.findall(text):
        if not _CJK.search(word):
            out.append(word)
            continue
        for piece in re.split(f"({_CJK.pattern})", word):
            if not piece:
                continue
            if _CJK.fullmatch(piece):
                out.extend([piece] if len(piece) == 1 else _bigrams(piece))
            else:
                out.append(piece)
    return out


def _bigrams(run: str) -> list[str]:
    return [run[i : i + 2] for i in range(len(run) - 1)]


def words(text: str) -> list[str]:
    """Every word stemmed, stopwords kept: for matching phrases such as "what if"."""
    return list(map(stem, surface_words(text)))


def terms(text: str) -> list[str]:
    """Index and query terms: stemmed words without stopwords."""
    kept = [w for w in surface_words(text) if w not in STOPWORDS]
    return [s for s in map(stem, kept) if s not in STOPWORDS]


# Words joined by a space (or a no-break space) and nothing else: "Kiyotaka Oshiyama",
# but not "Kawai, Mizuki" or "Director: Kiyotaka".
_NAME_GAP = frozenset({" ", "\u00a0"})


def names(text: str) -> list[frozenset[str]]:
    """Each run of two or more adjacent capitalised words in a sentence, as its terms.

    That is the shape of a person's name in English prose ("Kiyotaka Oshiyama"), and
    also of a studio's or a festival's. A sentence's first word is left out, as its
    capital says nothing ("Watching Fujino", "After Kyomoto's death"); stopwords end a
    run ("In Japan"), and all-capital words are not names ("USD").
    """
    runs: list[list[str]] = [[]]
    end = 0
    for n, match in enumerate(_WORD.finditer(text)):
        word = match.group()
        if n and word[:1].isupper() and word[1:2].islower() and normalize(word) not in STOPWORDS:
            if runs[-1] and text[end : match.start()] not in _NAME_GAP:
                runs.append([])
            runs[-1].append(word)
        elif runs[-1]:
            runs.append([])
        end = match.end()
    return [frozenset(terms(" ".join(run))) for run in runs if len(run) > 1]


def contains_phrase(haystack: list[str], phrase: list[str]) -> bool:
    """Whether the stemmed word sequence `phrase` occurs contiguously in `haystack`."""
    n = len(phrase)
    if n == 0:
        return False
    return any(haystack[i : i + n] == phrase for i in range(len(haystack) - n + 1))
