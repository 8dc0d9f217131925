"""Extractive question answering (XQuAD, MLQA, TyDiQA-GoldP): the answer is a span of the context.

Rows in SQuAD's fields: `id`, `question`, `context`, `answers` ({text: [...], answer_start: [...]},
character offsets into the context). Encoding follows transformers' question-answering example and
XTREME's `train_qa.sh`: the question, then the context cut into windows of `train.max_length`
tokens overlapping by `task.doc_stride`; a window's target is the first gold answer's first and
last tokens, or the first token where the answer is not wholly inside it. The head is
`AutoModelForQuestionAnswering`'s; evaluation keeps each window's start and end logits, and a
question's answer is the best span over its windows (`task.n_best` starts and ends each, at most
`task.max_answer_length` tokens, inside the context), mapped back to the context's characters.

Metrics: exact match and F1 per question, as SQuAD's or MLQA's official script normalises answers
(`task.answer_normalisation`, xlt.tasks._answers); F1 selects and headlines. A question counts
(exact, f1, 1) on its first window and zeros on the others, so per-row sums are per question.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from xlt.config import TaskConfig
from xlt.core.errors import ConfigError
from xlt.tasks._answers import MLQA_LANGUAGES, NORMALISATIONS, exact_and_f1, tokenizer_for

METRICS = ("f1", "exact_match")
STATISTICS = ("f1", "exact_match", "questions")
PEFT_TASK_TYPE = "QUESTION_ANS"
POOLED = False  # a start and an end per token: nothing pooled, no features to cache
MAX_CONTEXT_CHARS = 100_000  # a longer context is a whole document, not a passage: refused
MAX_QUESTION = 64  # tokens of a question kept (XTREME's max_query_length); the rest is cut
OUTSIDE = -1  # the offsets of a token outside the context (the question, special tokens, padding)


@dataclass
class Options(TaskConfig):
    """The question-answering kind's own options (conf/task/xquad.yaml, mlqa, tydiqa)."""
    # Tokens shared by consecutive windows of a long context; null: a third of train.max_length (XTREME's
    # 128 of 384).
    doc_stride: Optional[int] = None
    max_answer_length: int = 30  # the longest answer, in tokens, the span search considers
    n_best: int = 20  # the best starts and the best ends per window the span search pairs
    answer_normalisation: str = "squad"  # squad | mlqa: how answers are normalised before scoring


def columns(task: TaskConfig) -> List[str]:
    return ["id", "question", "context", "answers"]


def _answer_problem(answers, context: str) -> Optional[str]:
    if not isinstance(answers, dict) or not {"text", "answer_start"} <= set(answers):
        return "has answers that are not {text: [...], answer_start: [...]}"
    texts, starts = answers["text"], answers["answer_start"]
    if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
        return "has answers.text and answers.answer_start that are not lists of one length"
    for text, start in zip(texts, starts):
        if type(start) is not int or not isinstance(text, str) or context[start:start + len(text)] != text:
            found = context.find(text) if isinstance(text, str) else -1
            hint = f" (the text is at {found})" if found >= 0 else " (the text is not in the context)"
            return f"has answer_start {start!r}, which does not point at its answer {text!r}{hint}"
    return None


def row_problem(row, task: TaskConfig) -> Optional[str]:
    if not isinstance(row, dict) or any(c not in row for c in columns(task)):
        has = f" (it has {', '.join(row)}: another task's data?)" if isinstance(row, dict) else ""
        return f"needs the keys {', '.join(columns(task))} of task={task.name}{has}"
    question, context = row["question"], row["context"]
    if not isinstance(question, str) or not question.strip():
        return "has no question; every row needs one"
    if not isinstance(context, str) or not context.strip():
        return "has an empty context; every row needs the passage its answer is in"
    if len(context) > MAX_CONTEXT_CHARS:
        return f"has a context of {len(context)} characters, over {MAX_CONTEXT_CHARS}; split the document"
    return _answer_problem(row["answers"], context)


def check(cfg) -> None:
    """Options the span search and scoring can use, and windows that move forward."""
    task = cfg.task
    if task.answer_normalisation not in NORMALISATIONS:
        raise ConfigError("task.answer_normalisation", f"unknown value {task.answer_normalisation!r}; "
                                                        f"use {' or '.join(NORMALISATIONS)}")
    if task.answer_normalisation == "mlqa" and set(task.languages) - set(MLQA_LANGUAGES):
        extra = sorted(set(task.languages) - set(MLQA_LANGUAGES))
        raise ConfigError("task.answer_normalisation", f"mlqa normalises {', '.join(MLQA_LANGUAGES)} only, not "
                                                        f"{', '.join(extra)}; use squad")
    for name in ("doc_stride", "max_answer_length", "n_best"):
        if getattr(task, name) is not None and getattr(task, name) < 1:
            raise ConfigError(f"task.{name}", f"must be at least 1, got {getattr(task, name)}")
    max_length = cfg.train.max_length
    if stride_of(task, max_length) >= max_length:
        raise ConfigError("task.doc_stride", f"{task.doc_stride} is not below train.max_length={max_length}: "
                                             f"windows would not move; use e.g. task.doc_stride={max_length // 3}")


def stride_of(task: TaskConfig, max_length: int) -> int:
    return task.doc_stride if task.doc_stride is not None else max_length // 3


def encode(rows: Dict[str, list], tokenizer, task: TaskConfig, max_length: int) -> Dict[str, list]:
    if not tokenizer.is_fast:
        raise ConfigError("model", "question answering maps answers to characters with a fast tokenizer's offsets; "
                                   "this model's tokenizer is not fast")
    questions = _short_questions(rows["question"], tokenizer, task, max_length)
    enc = tokenizer(questions, rows["context"], truncation="only_second", max_length=max_length,
                    stride=stride_of(task, max_length), return_overflowing_tokens=True, return_offsets_mapping=True)
    source = enc.pop("overflow_to_sample_mapping")
    offsets, starts, ends = [], [], []
    for i, row in enumerate(source):
        in_context = [s == 1 for s in enc.sequence_ids(i)]
        window = [tuple(o) if inside else (OUTSIDE, OUTSIDE) for o, inside in zip(enc["offset_mapping"][i], in_context)]
        start, end = _target(window, rows["answers"][row])
        offsets.append(window), starts.append(start), ends.append(end)
    enc.pop("offset_mapping")
    first = [i == 0 or source[i - 1] != row for i, row in enumerate(source)]
    return {**enc, "start_positions": starts, "end_positions": ends, "offsets": offsets, "first": first,
            "length": [len(ids) for ids in enc["input_ids"]], "row": [rows["row"][r] for r in source],
            "context": [rows["context"][r] for r in source],
            "gold": [rows["answers"][r]["text"] for r in source], "lang": [rows["lang"][r] for r in source]}


def _short_questions(questions: List[str], tokenizer, task: TaskConfig, max_length: int) -> List[str]:
    """Questions cut to MAX_QUESTION tokens, and to what leaves a window more context than its stride
    (a window must move forward), at a token's end."""
    stride = stride_of(task, max_length)
    room = min(MAX_QUESTION, max_length - tokenizer.num_special_tokens_to_add(pair=True) - stride - 1)
    if room < 1:
        raise ConfigError("task.doc_stride", f"{stride} leaves no room for a question in a window of train.max_length="
                                             f"{max_length}; use e.g. task.doc_stride={max_length // 3}")
    cut = tokenizer([q.lstrip() for q in questions], add_special_tokens=False, return_offsets_mapping=True)
    return [q.lstrip()[:offsets[room - 1][1]] if len(offsets) > room else q.lstrip()
            for q, offsets in zip(questions, cut["offset_mapping"])]


def _target(window: List[Tuple[int, int]], answers: dict) -> Tuple[int, int]:
    """The first and last tokens of the first answer in a window; (0, 0) where it is not wholly inside."""
    if not answers["text"]:
        return 0, 0
    start_char = answers["answer_start"][0]
    end_char = start_char + len(answers["text"][0])
    inside = [i for i, (s, e) in enumerate(window) if s != OUTSIDE]
    if not inside or window[inside[0]][0] > start_char or window[inside[-1]][1] < end_char:
        return 0, 0
    start = next(i for i in inside if window[i][1] > start_char)
    end = next(i for i in reversed(inside) if window[i][0] < end_char)
    return start, end


def model_class(tiny: bool) -> type:
    import transformers

    return transformers.BertForQuestionAnswering if tiny else transformers.AutoModelForQuestionAnswering


def collator(tokenizer):
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer)


def preprocess_logits(logits, labels):
    import torch

    start, end = logits[:2]
    return torch.stack([start, end], dim=-1).float()  # a window's (start, end) logit per token


# -- from windows' logits to questions' answers ------------------------------------------------

def _best_span(scores: np.ndarray, window: np.ndarray, task: TaskConfig) -> Tuple[float, int, int]:
    """(score, start char, end char) of a window's best span inside the context; (-inf, 0, 0) where none.
    The n-best starts against the n-best ends, as a matrix: the first best in that order wins."""
    n = len(window)
    starts = np.argsort(scores[:n, 0])[::-1][:task.n_best]
    ends = np.argsort(scores[:n, 1])[::-1][:task.n_best]
    pairs = scores[starts, 0][:, None] + scores[ends, 1][None, :]
    length = ends[None, :] - starts[:, None] + 1
    inside = (window[starts, 0] != OUTSIDE)[:, None] & (window[ends, 0] != OUTSIDE)[None, :]
    pairs = np.where(inside & (length >= 1) & (length <= task.max_answer_length), pairs, -np.inf)
    i, j = np.unravel_index(np.argmax(pairs), pairs.shape)
    if not np.isfinite(pairs[i, j]):
        return -np.inf, 0, 0
    return float(pairs[i, j]), int(window[starts[i], 0]), int(window[ends[j], 1])


def answers(predictions: np.ndarray, features, task: TaskConfig) -> Dict[int, Tuple[int, int]]:
    """Per question (its row), the (start, end) characters of its best span over its windows."""
    columns_ = features.with_format(None).select_columns(["row", "offsets"]).to_dict()
    best: Dict[int, Tuple[float, int, int]] = {}
    for scores, row, window in zip(np.asarray(predictions), columns_["row"], columns_["offsets"]):
        found = _best_span(scores, np.asarray(window, dtype=np.int64).reshape(-1, 2), task)
        if row not in best or found[0] > best[row][0]:
            best[row] = found
    return {row: (s, e) for row, (_, s, e) in best.items()}


def _scored(predictions: np.ndarray, features, task: TaskConfig) -> Tuple[np.ndarray, Dict[int, Tuple[int, int]]]:
    """Per window, (f1, exact match, questions) on its question's first window, zeros on the
    others; and each question's answer span."""
    spans = answers(predictions, features, task)
    cols = features.with_format(None).select_columns(["row", "first", "context", "gold", "lang"]).to_dict()
    stats = np.zeros((len(cols["row"]), len(STATISTICS)), dtype=np.float32)
    for i, (row, first, context, gold, lang) in enumerate(zip(*cols.values())):
        if first:
            start, end = spans[row]
            exact, f1 = exact_and_f1(context[start:end], gold, tokenizer_for(task.answer_normalisation, lang))
            stats[i] = (f1, exact, 1.0)
    return stats, spans


def example_statistics(predictions: np.ndarray, label_ids, task: TaskConfig, features=None) -> np.ndarray:
    return _scored(predictions, features, task)[0]


def score(metric: str, sums: np.ndarray) -> np.ndarray:
    return sums[..., STATISTICS.index(metric)] / np.maximum(sums[..., 2], 1e-12)


def metrics(predictions: np.ndarray, label_ids, task: TaskConfig, features=None) -> Dict[str, float]:
    sums = example_statistics(predictions, label_ids, task, features).sum(axis=0)
    return {metric: float(score(metric, sums)) for metric in METRICS}


def prediction_arrays(predictions: np.ndarray, label_ids, task: TaskConfig, features=None) -> Dict[str, np.ndarray]:
    """Per window: whether it is its question's first (`gold_first`), and there the answer's
    characters in the context (`pred_start`, `pred_end`; -1 on the other windows)."""
    spans = answers(predictions, features, task)  # the spans alone: scoring them is example_statistics'
    cols = features.with_format(None).select_columns(["row", "first"]).to_dict()
    chars = np.array([spans[row] if first else (-1, -1) for row, first in zip(cols["row"], cols["first"])],
                     dtype=np.int32).reshape(-1, 2)
    return {"gold_first": np.asarray(cols["first"], dtype=bool), "pred_start": chars[:, 0], "pred_end": chars[:, 1]}


def prediction_alarms(task: TaskConfig, train_language: str, tested: Dict[str, Tuple[np.ndarray, object]],
                      features: Optional[Dict[str, object]] = None) -> List[str]:
    """Learns nothing (F1 0 in every language), and a language whose answers are all empty."""
    found: List[str] = []
    f1, empty = {}, []
    for lang, (predictions, _) in tested.items():
        stats, spans = _scored(predictions, features[lang], task)
        f1[lang] = float(score("f1", stats.sum(axis=0)))
        if spans and all(end <= start for start, end in spans.values()):
            empty.append(lang)
    if f1 and all(v == 0 for v in f1.values()):
        found.append(f"learns nothing: F1 0 in every language ({', '.join(f1)})")
    found += [f"{lang} empty answers only: every one of its {len(features[lang].unique('row'))} questions "
              f"gets an empty answer" for lang in empty]
    return found
