import difflib

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core import spelling
from bot.core.spelling import Speller

# Few letters make close words common; with 4 counted columns most characters share
# the last one, so its bound is exercised too.
LETTERS = "abcdeαβγδ語日本"
words = st.text(LETTERS, min_size=1, max_size=9)


@settings(max_examples=200, deadline=None)
@given(vocabulary=st.lists(words, min_size=1, max_size=60, unique=True), word=words)
def test_corrections_are_the_ones_difflib_picks_from_every_candidate(vocabulary, word):
    if word in vocabulary:
        return
    speller = Speller(vocabulary, 0.7, columns=4)
    same_initial = [t for t in vocabulary if t[0] == word[0]]
    close = difflib.get_close_matches(word, same_initial, 1, 0.7)
    expected = close[0] if close and len(word) >= spelling.MIN_LENGTH else word
    assert speller.correct(word) == expected


def test_characters_beyond_the_counted_columns_share_one():
    speller = Speller(["abcdéfgh", "abxyzzzz"], 0.85, columns=2)
    assert speller.correct("abcdefgh") == "abcdéfgh"
    assert speller.correct("abxyzzzy") == "abxyzzzz"


def test_short_and_distant_words_are_left_alone():
    speller = Speller(["oshiyama", "kyomoto"], 0.85)
    assert speller.correct("oshiyma") == "oshiyama"
    assert speller.correct("osh") == "osh"
    assert speller.correct("zebra") == "zebra"


def test_the_memo_of_corrections_stays_bounded(monkeypatch):
    monkeypatch.setattr(spelling, "MEMO_MAX", 100)
    speller = Speller(["oshiyama"], 0.85)
    for n in range(250):
        speller.correct(f"word{n}")
    assert len(speller._memo) <= 100
    assert speller.correct("oshiyma") == "oshiyama"


def test_a_word_exactly_at_the_cutoff_is_corrected_as_difflib_does():
    # ratio("abcd", "abce") is 2 * 3 / 8 = 0.75 exactly; difflib keeps ratios >= cutoff.
    assert Speller(["abce"], 0.75).correct("abcd") == "abce"


def test_a_question_of_fresh_misspellings_is_corrected_only_so_far():
    speller = Speller(["oshiyama", "kyomoto", "fujino", "nakamura", "durian"], 0.85)
    typed = ["oshiyma", "kyomot", "fujno", "nakamur", "durain"]
    first = speller.correct_all(typed, new=3)
    assert list(first.values()) == ["oshiyama", "kyomoto", "fujino", "nakamur", "durain"]
    again = speller.correct_all(typed, new=1)  # remembered ones are free
    assert list(again.values()) == ["oshiyama", "kyomoto", "fujino", "nakamura", "durain"]
