"""Sentence(-pair) classification (XNLI, PAWS-X): a label per row of one or two texts.

Rows: the task's `text_fields` (strings) and an integer label (`label_field`) in `labels` order.
The head is `AutoModelForSequenceClassification`'s; evaluation keeps each row's class
probabilities (the per-example predictions file keeps them, float16); accuracy is the metric,
each row counting (right, 1) toward it. Its pooled features can be cached for a frozen encoder.
"""
from __future__ import annotations

import json
from typing import Dict, List, Optional, Tuple

import numpy as np

from xlt.config import TaskConfig

METRICS = ("accuracy",)
STATISTICS = ("right", "rows")
PEFT_TASK_TYPE = "SEQ_CLS"
POOLED = True  # its head reads one pooled vector per row: model.pooling applies, features may be cached
ONE_CLASS = 0.90  # one label for more than this share of a language's test rows is an alarm
WELL_ABOVE = 0.10  # the training language this far above chance makes a target at chance an alarm
LEVEL = 0.95


def columns(task: TaskConfig) -> List[str]:
    """The columns of a task's rows: its text fields, then its label."""
    return [*task.text_fields, task.label_field]


def _label_fix(task: TaskConfig) -> str:
    ids = [f"{i} ({name})" for i, name in enumerate(task.labels)]
    return f"use the integer {', '.join(ids[:-1])} or {ids[-1]}"


def row_problem(row, task: TaskConfig) -> Optional[str]:
    if not isinstance(row, dict) or any(c not in row for c in columns(task)):
        has = f" (it has {', '.join(row)}: another task's data?)" if isinstance(row, dict) else ""
        return f"needs the keys {', '.join(columns(task))} of task={task.name}{has}"
    for c in task.text_fields:
        if not isinstance(row[c], str):
            return f"has {c} {row[c]!r}; it must be a string"
    label = row[task.label_field]
    # 1.0 and true compare equal to 1: pandas writes them, and the loss then fails on them.
    if type(label) is not int or not 0 <= label < len(task.labels):
        return f"has {task.label_field} {json.dumps(label)}; {_label_fix(task)}"
    return None


def encode(rows: Dict[str, list], tokenizer, task: TaskConfig, max_length: int) -> Dict[str, list]:
    # Trailing whitespace would become an extra piece for SentencePiece vocabularies.
    texts = [[text.strip() for text in rows[name]] for name in task.text_fields]
    enc = tokenizer(*texts, truncation=True, max_length=max_length)
    enc["length"] = [len(ids) for ids in enc["input_ids"]]
    enc["label"], enc["row"] = rows[task.label_field], rows["row"]
    return dict(enc)


def model_class(tiny: bool) -> type:
    import transformers

    return transformers.BertForSequenceClassification if tiny else transformers.AutoModelForSequenceClassification


def collator(tokenizer):
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer)


def preprocess_logits(logits, labels):
    return logits.float().softmax(dim=-1)  # what the per-example predictions keep


def metrics(predictions: np.ndarray, label_ids: np.ndarray, task: TaskConfig, features=None) -> Dict[str, float]:
    return {"accuracy": float(np.mean(predictions.argmax(-1) == label_ids))}


def example_statistics(predictions: np.ndarray, label_ids: np.ndarray, task: TaskConfig, features=None) -> np.ndarray:
    right = (np.asarray(predictions).argmax(-1) == label_ids).astype(np.float32)
    return np.stack([right, np.ones_like(right)], axis=-1)


def score(metric: str, sums: np.ndarray) -> np.ndarray:
    return sums[..., 0] / np.maximum(sums[..., 1], 1e-12)


def prediction_arrays(predictions: np.ndarray, label_ids: np.ndarray, task: TaskConfig,
                      features=None) -> Dict[str, np.ndarray]:
    probs = np.asarray(predictions).astype(np.float16)
    return {"probs": probs, "pred": probs.argmax(-1).astype(np.int16), "gold": np.asarray(label_ids).astype(np.int16)}


# -- alarms -------------------------------------------------------------------------------------

def _interval(right: int, rows: int) -> Tuple[float, float]:
    from scipy.stats import binomtest

    ci = binomtest(right, rows).proportion_ci(LEVEL, method="wilson")
    return ci.low, ci.high


def prediction_alarms(task: TaskConfig, train_language: str, tested: Dict[str, Tuple[np.ndarray, np.ndarray]],
                      features=None) -> List[str]:
    """`tested`: per language, what evaluation kept (probabilities) and the gold labels. Learns
    nothing (every language within noise of chance), a language at chance while the
    training language is well above it, one class predicted, one gold label."""
    labels = task.labels
    tested = {lang: (np.asarray(probs).argmax(-1), gold) for lang, (probs, gold) in tested.items()}
    chance = 1 / len(labels)
    accuracy = {lang: float(np.mean(pred == gold)) for lang, (pred, gold) in tested.items() if len(gold)}
    near = {lang: _interval(int(np.sum(pred == gold)), len(gold)) for lang, (pred, gold) in tested.items() if len(gold)}
    at_chance = [lang for lang, (low, high) in near.items() if low <= chance <= high]
    numbers = ", ".join(f"{lang} {accuracy[lang]:.3f}" for lang in accuracy)
    found: List[str] = []
    if at_chance and len(at_chance) == len(near):
        found.append(f"learns nothing: every language within noise of chance {chance:.3f} ({numbers})")
    else:
        trained = near.get(train_language)
        if trained and trained[0] >= chance + WELL_ABOVE:
            found += [f"{lang} at chance: {accuracy[lang]:.3f} (chance {chance:.3f}, {train_language} "
                      f"{accuracy[train_language]:.3f})" for lang in at_chance]
        found += _one_class(labels, tested)
    return found + _one_gold_label(labels, tested)


def _one_class(labels: List[str], tested: Dict[str, Tuple[np.ndarray, np.ndarray]]) -> List[str]:
    out = []
    for lang, (pred, _) in tested.items():
        counts = np.bincount(pred.astype(int), minlength=len(labels))
        if len(pred) and counts.max() > ONE_CLASS * len(pred):
            out.append(f"{lang} one class: {labels[counts.argmax()]} for {counts.max() / len(pred):.0%} of "
                       f"{len(pred)} test rows")
    return out


def _one_gold_label(labels: List[str], tested: Dict[str, Tuple[np.ndarray, np.ndarray]]) -> List[str]:
    out = []
    for lang, (_, gold) in tested.items():
        values = np.unique(gold)
        if len(gold) > 1 and len(values) == 1:
            name = labels[int(values[0])] if 0 <= int(values[0]) < len(labels) else str(values[0])
            out.append(f"{lang} one gold label: all {len(gold)} test rows are {name} (hidden test labels?)")
    return out
