from bot.core import analysis


def test_index_and_query_text_meet_whatever_case_punctuation_and_apostrophes():
    assert analysis.terms("Oshiyama’s direction.") == analysis.terms("oshiyama's DIRECTION")


def test_stemming_joins_word_forms():
    assert analysis.terms("murdered") == analysis.terms("murder")
    assert analysis.terms("animated") == analysis.terms("animation")


def test_question_words_and_apostrophe_less_contractions_are_stopwords():
    assert analysis.terms("whats the runtime") == analysis.terms("what's the runtime") == ["runtim"]
    assert analysis.terms("who is it") == []


def test_zero_width_characters_do_not_split_words():
    assert analysis.terms("Fuji\u200bno") == analysis.terms("Fujino")


def test_japanese_is_indexed_as_bigrams_so_a_longer_query_still_meets_it():
    title = set(analysis.terms("ルックバック"))
    assert title == {"ルッ", "ック", "クバ", "バッ"}
    assert title <= set(analysis.terms("ルックバックの監督は"))


def test_phrases_match_on_stemmed_words_with_stopwords_kept():
    words = analysis.words("She imagines what if things had gone otherwise")
    assert analysis.contains_phrase(words, analysis.words("what if"))
    assert not analysis.contains_phrase(words, analysis.words("if what"))
    assert not analysis.contains_phrase(words, [])


def test_links_and_mentions_are_not_words():
    noisy = "<@123> <@!9> <@&456> <#789> @everyone @here https://x.y/look||back who composed it"
    assert analysis.terms(noisy) == analysis.terms("who composed it")


def test_names_are_runs_of_capitalised_words_after_a_sentences_first_word():
    kiyotaka, yuumi, mizuki = ({"kiyotaka", "oshiyama"}, {"yuumi", "kawai"}, {"mizuki", "yoshida"})
    assert analysis.names("Director: Kiyotaka Oshiyama") == [kiyotaka]
    assert analysis.names("Cast: Yuumi Kawai, Mizuki Yoshida") == [yuumi, mizuki]
    assert analysis.names("directed by Kiyotaka Oshiyama’s team") == [kiyotaka]
    # A sentence's first capital says nothing; stopwords and acronyms are not names.
    assert analysis.names("Watching Fujino draw") == []
    assert analysis.names("it opened In Japan, earning USD Millions") == []
