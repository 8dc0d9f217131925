"""Rule-made extractive questions over real sentences: "what comes after «X»?", answered by the one or two
words (Chinese: two characters) that follow X in the sentence. No QA corpus reaches this machine; this
makes SQuAD-shaped rows (id, question, context, answers) from the XNLI sentences in ../shared or the
bundled sample, in every language they have, so that xlt's span pipeline can be shown to learn on
English and transfer. Synthetic: it measures that, not reading comprehension.

Used by benchmarks/bench_span_questions.py and the tests (tests/tasks/test_question_answering.py).
"""
from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from xlt.tasks._answers import mlqa_tokens

QUESTION = {
    "en": 'What comes after "{}"?', "de": 'Was kommt nach "{}"?', "fr": "Qu'est-ce qui vient après « {} » ?",
    "es": '¿Qué viene después de "{}"?', "ar": 'ما الذي يأتي بعد "{}"؟', "zh": "“{}”后面是什么？",
}
WORD = {"zh": re.compile(r"[\u4e00-\u9fff]{2}")}  # two characters make a Chinese "word" here
DEFAULT_WORD = re.compile(r"\w+")


def _words(context: str, lang: str) -> List[re.Match]:
    return list(WORD.get(lang, DEFAULT_WORD).finditer(context))


def question_of(context: str, lang: str, rng: random.Random) -> Optional[dict]:
    """A question on `context` whose anchor occurs once in it, and its answer (one that scoring does not
    normalise away, as it would "the"); None where none fits."""
    words = _words(context, lang)
    anchors = [i for i in range(len(words) - 1) if context.count(words[i].group()) == 1]
    rng.shuffle(anchors)
    for i in anchors:
        last = min(len(words) - 1, i + rng.choice((1, 2)))
        start, end = words[i + 1].start(), words[last].end()
        if mlqa_tokens(context[start:end], lang):
            return {"question": QUESTION[lang].format(words[i].group()), "context": context,
                    "answers": {"text": [context[start:end]], "answer_start": [start]}}
    return None


def rows_from(sentences: Iterator[str], lang: str, n: int, seed: int = 0) -> List[dict]:
    """Up to `n` rows, one per distinct sentence, each with its question."""
    rng, seen, rows = random.Random(seed), set(), []
    for context in sentences:
        if context in seen:
            continue
        seen.add(context)
        row = question_of(context, lang, rng)
        if row is not None:
            rows.append({"id": f"{lang}-{len(rows)}", **row})
        if len(rows) == n:
            break
    return rows


def xnli_sentences(path: Path) -> Iterator[str]:
    """The premises of an XNLI JSONL file, in file order (each once per pair)."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)["premise"]


def write_split(rows: List[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def span_task(xnli: Path, into: Path, sizes: Dict[str, int], langs: List[str]) -> Path:
    """DIR/{split}.{lang}.jsonl for task=xquad or mlqa: English training rows, then validation and
    test rows in each language (`sizes`: rows per split), made from XNLI files of that layout."""
    write_split(rows_from(xnli_sentences(xnli / "train.en.jsonl"), "en", sizes["train"]), into / "train.en.jsonl")
    for split in ("validation", "test"):
        for lang in langs:
            rows = rows_from(xnli_sentences(xnli / f"{split}.{lang}.jsonl"), lang, sizes[split], seed=1)
            write_split(rows, into / f"{split}.{lang}.jsonl")
    return into
