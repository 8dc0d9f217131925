"""Exact match and F1 against the official definitions (SQuAD v1.1's evaluate-v1.1.py, MLQA's
mlqa_evaluation_v1.py), on hand-made cases whose values are worked out in the comments."""
import pytest

from xlt.tasks._answers import exact_and_f1, tokenizer_for

SQUAD = [
    ("the Eiffel Tower", ["Eiffel Tower"], 1.0, 1.0),  # an English article goes
    ("Eiffel Tower.", ["eiffel tower"], 1.0, 1.0),  # case and ASCII punctuation go
    ("in Paris, France", ["Paris"], 0.0, 0.5),  # 1 of 3 predicted tokens right, the one gold found: 2PR/(P+R) = 0.5
    ("1889", ["in 1889", "1889"], 1.0, 1.0),  # the best gold answer counts
    ("", ["Paris"], 0.0, 0.0),
    ("a a b", ["a b b"], 0.0, 2 / 3),  # articles gone: [b] vs [b, b]; P 1, R 1/2
    ("“Paris”", ["Paris"], 0.0, 0.0),  # curly quotes are not ASCII punctuation: one other token
    ("埃菲尔", ["埃菲尔铁塔"], 0.0, 0.0),  # no spaces: each answer is one token
]
MLQA = [
    ("der Eiffelturm", ["Eiffelturm"], "de", 1.0, 1.0),  # German articles go
    ("la Torre Eiffel", ["Torre Eiffel"], "es", 1.0, 1.0),
    ("the Eiffel Tower", ["Eiffel Tower"], "en", 1.0, 1.0),
    ("“Paris”", ["Paris"], "en", 1.0, 1.0),  # every Unicode punctuation mark goes
    ("الكتاب", ["كتاب"], "ar", 1.0, 1.0),  # the Arabic article ال goes
    ("埃菲尔铁塔", ["埃菲尔铁塔。"], "zh", 1.0, 1.0),  # the ideographic full stop is punctuation
    ("埃菲尔", ["埃菲尔铁塔"], "zh", 0.0, 0.75),  # a token per character: 3 of 5, P 1, R 3/5
    ("2019年", ["2019"], "zh", 0.0, 2 / 3),  # mixed segmentation: [2019, 年] vs [2019]
    ("der Turm", ["Turm"], "hi", 0.0, 2 / 3),  # Hindi has no articles: [der, turm] vs [turm]
]


@pytest.mark.parametrize("prediction, golds, exact, f1", SQUAD)
def test_squad_v1_1(prediction, golds, exact, f1):
    assert exact_and_f1(prediction, golds, tokenizer_for("squad", "en")) == (exact, pytest.approx(f1))


@pytest.mark.parametrize("prediction, golds, lang, exact, f1", MLQA)
def test_mlqa_per_language(prediction, golds, lang, exact, f1):
    assert exact_and_f1(prediction, golds, tokenizer_for("mlqa", lang)) == (exact, pytest.approx(f1))


def test_the_squad_normalisation_ignores_the_language():
    assert tokenizer_for("squad", "de")("der Turm") == ["der", "turm"]
