"""Alarms: signs that a run is broken, not merely weak, checked as the job ends. They are kept as
the run's tag `xlt.alarms` (`; ` between them), logged, and shown by the sweep's summary and by
the report, each naming the language and the number.

The task's kind raises those its test predictions show (xlt.tasks: for sentence tasks "learns
nothing", "at chance", "one class", "one gold label"; for token tasks "learns nothing", "one tag");
here, those of every kind:

- NaN: a training loss or gradient norm that is NaN (Trainer's logged loss hides a NaN step
  loss by default, `logging_nan_inf_filter`; the gradient norm does not);
- loss: a training loss never below its first value;
- leak?: the headline metric on validation 15 points or more above test in a language, at the
  tested step.
"""
from __future__ import annotations

import math
from typing import Dict, List

LEAK = 0.15


def alarms(metric: str, training: List[Dict[str, float]], validation: Dict[str, float],
           test: Dict[str, float]) -> List[str]:
    """`training`: Trainer's training records (`loss`, `grad_norm`); `validation` and `test`: each
    language's value of the headline `metric`, at the tested step."""
    return _training(training) + _leak(metric, validation, test)


def _training(records: List[Dict[str, float]]) -> List[str]:
    nan = [i for i, r in enumerate(records) if any(math.isnan(r.get(k, 0.0)) for k in ("loss", "grad_norm"))]
    if nan:
        return [f"NaN in training: loss or gradient norm NaN from logged step {nan[0] + 1} of {len(records)}"]
    losses = [r["loss"] for r in records if "loss" in r]
    if len(losses) >= 3 and min(losses[1:]) >= losses[0]:
        return [f"loss never below its first value {losses[0]:.4f} (lowest later {min(losses[1:]):.4f})"]
    return []


def _leak(metric: str, validation: Dict[str, float], test: Dict[str, float]) -> List[str]:
    name = "" if metric == "accuracy" else f" {metric}"  # accuracy's alarm reads as it always did
    return [f"{lang} leak?: validation{name} {validation[lang]:.3f}, test {test[lang]:.3f}"
            for lang in test if lang in validation and validation[lang] - test[lang] >= LEAK]
