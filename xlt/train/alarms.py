"""Alarms: signs that a run is broken, not merely weak, checked as the job ends. They are kept as
the run's tag `xlt.alarms` (`; ` between them), logged, and shown by the sweep's summary and by
the report, each naming the language and the number.

- learns nothing: every language within noise of chance, the training language included;
- at chance: a language within noise of chance while the training language is well above it
  (a tokenizer that does not cover the script, a wrong checkpoint);
- one class: one label predicted for more than 90% of a language's test rows;
- one gold label: a test split whose gold labels are all one value (hidden test labels);
- NaN: a training loss or gradient norm that is NaN (Trainer's logged loss hides a NaN step
  loss by default, `logging_nan_inf_filter`; the gradient norm does not);
- loss: a training loss never below its first value;
- leak?: validation accuracy 15 points or more above test in a language, at the tested step.

"Within noise of chance": 1/labels lies in the Wilson 95% interval of the accuracy over the
language's test rows; "well above": the interval's lower end is 10 points or more above chance
(a weak run, its training language at 0.45 on 400 rows, is no alarm: its targets are weak too).
"""
from __future__ import annotations

import math
from typing import Dict, List, Tuple

import numpy as np

ONE_CLASS = 0.90
LEAK = 0.15
WELL_ABOVE = 0.10
LEVEL = 0.95


def _interval(right: int, rows: int) -> Tuple[float, float]:
    from scipy.stats import binomtest

    ci = binomtest(right, rows).proportion_ci(LEVEL, method="wilson")
    return ci.low, ci.high


def alarms(labels: List[str], train_language: str, tested: Dict[str, Tuple[np.ndarray, np.ndarray]],
           training: List[Dict[str, float]], validation: Dict[str, float]) -> List[str]:
    """The alarms of a run: `tested` maps each language to (predicted, gold) labels of its test rows,
    `training` holds Trainer's training records (`loss`, `grad_norm`), `validation` each language's
    accuracy at the tested step."""
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
    found += _one_gold_label(labels, tested) + _training(training) + _leak(validation, accuracy)
    return found


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


def _training(records: List[Dict[str, float]]) -> List[str]:
    nan = [i for i, r in enumerate(records) if any(math.isnan(r.get(k, 0.0)) for k in ("loss", "grad_norm"))]
    if nan:
        return [f"NaN in training: loss or gradient norm NaN from logged step {nan[0] + 1} of {len(records)}"]
    losses = [r["loss"] for r in records if "loss" in r]
    if len(losses) >= 3 and min(losses[1:]) >= losses[0]:
        return [f"loss never below its first value {losses[0]:.4f} (lowest later {min(losses[1:]):.4f})"]
    return []


def _leak(validation: Dict[str, float], test: Dict[str, float]) -> List[str]:
    return [f"{lang} leak?: validation {validation[lang]:.3f}, test {test[lang]:.3f}"
            for lang in test if lang in validation and validation[lang] - test[lang] >= LEAK]
