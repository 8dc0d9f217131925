"""Exact match and F1 of a predicted answer against its gold answers, as the official scripts define them.

`squad`: SQuAD v1.1's `evaluate-v1.1.py` (what XTREME scores XQuAD and TyDiQA-GoldP with): lower
case, ASCII punctuation and the English articles removed, whitespace tokens. `mlqa`: MLQA's
`mlqa_evaluation_v1.py`: every Unicode punctuation character removed, each language's articles
(en, es, de, vi, ar; none in hi, zh), whitespace tokens, and for Chinese mixed segmentation (each
CJK character and punctuation mark a token of its own, other runs split on whitespace). A question
scores the best over its gold answers. Written here because the `evaluate` library fetches these
scripts from the hub at run time; tests/tasks/test_answers.py checks them on hand-made cases.
"""
from __future__ import annotations

import re
import string
import sys
import unicodedata
from collections import Counter
from functools import lru_cache
from typing import Callable, List, Sequence, Tuple

NORMALISATIONS = ("squad", "mlqa")
MLQA_LANGUAGES = ("en", "es", "de", "ar", "hi", "vi", "zh")
_ARTICLES = {
    "en": r"\b(a|an|the)\b",
    "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "ar": r"\sال^|ال",  # as the MLQA script has it: every "ال" (the article) goes
}
_CJK = re.compile(r"[\u4e00-\u9fa5]")


@lru_cache(maxsize=1)
def _unicode_punctuation() -> frozenset:
    return frozenset(chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P")) \
        | frozenset(string.punctuation)


def squad_tokens(text: str) -> List[str]:
    """SQuAD v1.1's normalised answer, as tokens."""
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return re.sub(_ARTICLES["en"], " ", text).split()


def _mixed_segmentation(text: str) -> List[str]:
    punctuation, out, run = _unicode_punctuation(), [], ""
    for ch in text:
        if _CJK.search(ch) or ch in punctuation:
            out += run.split() + [ch]
            run = ""
        else:
            run += ch
    return out + run.split()


def mlqa_tokens(text: str, lang: str) -> List[str]:
    """MLQA's normalised answer in `lang`, as tokens."""
    punctuation = _unicode_punctuation()
    text = "".join(ch for ch in text.lower() if ch not in punctuation)
    if lang in _ARTICLES:
        text = re.sub(_ARTICLES[lang], " ", text)
    tokens = _mixed_segmentation(text) if lang == "zh" else text.split()
    return [t for t in tokens if t.strip()]


def tokenizer_for(normalisation: str, lang: str) -> Callable[[str], List[str]]:
    if normalisation == "mlqa":
        return lambda text: mlqa_tokens(text, lang)
    return squad_tokens


def _f1(pred: List[str], gold: List[str]) -> float:
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def exact_and_f1(prediction: str, golds: Sequence[str], tokens: Callable[[str], List[str]]) -> Tuple[float, float]:
    """(exact match, F1) of a prediction: the best over the gold answers (0, 0 where there are none)."""
    pred = tokens(prediction)
    scored = [(float(pred == gold), _f1(pred, gold)) for gold in map(tokens, golds)]
    return (max(s[0] for s in scored), max(s[1] for s in scored)) if scored else (0.0, 0.0)
