import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.answer import (
    MAX_QUESTION_CHARS,
    QuestionError,
    answer_question,
    clean_question,
    question_from_message,
)


def test_spoiler_passages_are_withheld_and_counted_without_opt_in(retriever):
    answer = answer_question(retriever, "what happens to kyomoto", spoilers=False)
    assert answer.withheld > 0
    assert not any(p.spoiler for p in answer.passages)


def test_opted_in_members_get_spoiler_passages(retriever):
    answer = answer_question(retriever, "what happens to kyomoto", spoilers=True)
    assert answer.withheld == 0
    assert any(p.spoiler for p in answer.passages)
    assert [p.rank for p in answer.passages] == list(range(1, len(answer.passages) + 1))


def test_spoiler_free_answer_is_the_same_either_way(retriever):
    off = answer_question(retriever, "who composed the music", spoilers=False)
    on = answer_question(retriever, "who composed the music", spoilers=True)
    assert off.passages[0].chunk == on.passages[0].chunk


@pytest.mark.parametrize(
    "question",
    ["how do i install python", "recommend me a pizza place", "how tall is mount everest"],
)
def test_abstention_carries_a_hint_of_what_can_be_asked(retriever, question):
    answer = answer_question(retriever, question, spoilers=False)
    assert answer.abstained and not answer.passages
    assert "Look Back" in answer.hint and "director" in answer.hint


def test_an_answer_resting_on_a_weak_similarity_alone_is_marked_a_guess(retriever):
    """'weather' and 'tokyo' are in no passage, yet a passage with rain in it is about as
    similar to the question as passages are to 'is it sad': answered, but not confidently."""
    guess = answer_question(retriever, "what's the weather in tokyo?", spoilers=False)
    assert guess.passages and not guess.confident
    sure = answer_question(retriever, "who composed the music", spoilers=False)
    assert sure.confident


@pytest.mark.parametrize("question", ["", "   ", "\n\t", "\u200b\u200b"])
def test_empty_questions_are_refused_with_an_example(question):
    with pytest.raises(QuestionError, match="Please ask a question"):
        clean_question(question)


def test_over_long_questions_are_refused_with_the_limit():
    with pytest.raises(QuestionError, match=str(MAX_QUESTION_CHARS)):
        clean_question("a" * (MAX_QUESTION_CHARS + 1))
    assert clean_question("a" * MAX_QUESTION_CHARS) == "a" * MAX_QUESTION_CHARS


def test_control_and_invisible_characters_are_removed_from_questions():
    assert clean_question("who\x00 directed\u200b\nit?") == "who directed it?"


@given(st.text(max_size=MAX_QUESTION_CHARS))
def test_cleaned_questions_keep_no_invisible_characters_or_runs_of_space(text):
    try:
        cleaned = clean_question(text)
    except QuestionError:
        return
    assert cleaned.split() == cleaned.split(" ")  # single spaces, none at the ends
    assert not any(unicodedata.category(c) in ("Cc", "Cf") for c in cleaned)


def test_japanese_title_finds_the_credits(retriever):
    answer = answer_question(retriever, "ルックバック", spoilers=False)
    assert "ルックバック" in answer.passages[0].chunk.text


@pytest.mark.parametrize(
    ("content", "question"),
    [
        ("<@123> who composed the music? https://x.y/z", "who composed the music?"),
        ("did ||kyomoto die|| in the end @everyone <#5> <:pog:99>", "did in the end"),
        ("||all of it is a spoiler||", ""),
    ],
)
def test_a_message_becomes_its_words_without_spoilers_mentions_or_links(content, question):
    assert question_from_message(content) == (question, False)


def test_a_long_message_is_cut_on_a_word_boundary_and_says_so():
    words = "why does fujino stop drawing " * 20
    question, cut = question_from_message(words)
    assert cut and len(question) <= MAX_QUESTION_CHARS
    assert words.startswith(question) and words[len(question)] == " "  # a whole word ends it
    assert len(question) > MAX_QUESTION_CHARS - len("drawing ")


@pytest.mark.parametrize(
    "question", ["is there an axe", "was there a murder", "is there a victim", "killing spree?"]
)
def test_whether_a_member_without_spoilers_is_answered_does_not_depend_on_spoilers(
    retriever, question
):
    """Only withheld passages answer these; for a member without spoilers they must go as
    a question about a dog does (privately, unanswered), or the channel would learn that
    the twist has an axe in it."""
    spoiled = answer_question(retriever, question, spoilers=False)
    neutral = answer_question(retriever, "is there a dog", spoilers=False)
    assert not spoiled.passages and not neutral.passages
    assert spoiled.withheld and not neutral.withheld  # told to the asker alone
    assert answer_question(retriever, question, spoilers=True).passages
