"""Training progress for a person: Trainer's dicts and bars replaced by lines worth reading.

- every `train.logging_steps`: `step 40/76 (53%) loss 1.103 lr 6.2e-04 epoch 1.05, 12 s, ~10 s left`
  (on a terminal a progress bar shows this instead; the line still goes to the job's run.log);
- every evaluation round, in the task's headline metric: `step 40 validation: target mean 0.334 | en 0.330 ...`;
- at the end: the same line for `test` (the selected weights) and `test_last`.
"""
from __future__ import annotations

import logging
import time
from typing import List, Optional

from transformers import TrainerCallback

from xlt.core.console import STEP_LINE, job_tag, on_terminal
from xlt.core.metrics import Rounds, from_trainer_logs, target_mean

log = logging.getLogger(__name__)


def round_line(step: int, split: str, accuracy: dict, train_language: str) -> str:
    mean = target_mean(accuracy, train_language)
    where = f"step {step} {split}" if split == "validation" else split  # test weights: xlt.train.selection
    head = f"{where}: " + (f"target mean {mean:.3f} | " if mean is not None else "")
    return head + " ".join(f"{lang} {value:.3f}" for lang, value in accuracy.items())


class ProgressLog(TrainerCallback):
    def __init__(self, languages: List[str], train_language: str, bar_position: Optional[int], metric: str,
                 validated: Optional[List[str]] = None):
        self.languages, self.train_language = languages, train_language
        self.rounds = Rounds(languages, metric, validated)  # the task's headline metric (xlt.tasks)
        self.bar_position = bar_position  # one bar per job running side by side
        self.bar = None
        self.started = time.monotonic()
        self.first_step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.started, self.first_step = time.monotonic(), state.global_step
        if on_terminal():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=state.max_steps, initial=state.global_step, position=self.bar_position,
                            desc=(job_tag() or "training ").strip(), leave=False, dynamic_ncols=True)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        metrics = from_trainer_logs(logs or {})
        if "train/loss" in metrics:
            self._step_line(state, metrics)
        for split, accuracy in self.rounds.add(metrics).items():
            ordered = {lang: accuracy[lang] for lang in self.languages if lang in accuracy}
            log.info(round_line(state.global_step, split, ordered, self.train_language))

    def _step_line(self, state, metrics: dict) -> None:
        step, total = state.global_step, state.max_steps
        elapsed = time.monotonic() - self.started
        done = max(1, step - self.first_step)
        left = elapsed / done * (total - step)
        line = (f"step {step}/{total} ({100 * step / total:.0f}%) loss {metrics['train/loss']:.4f} "
                f"lr {metrics.get('train/learning_rate', 0):.2e} epoch {metrics.get('train/epoch', 0):.2f}, "
                f"{elapsed:.0f} s, ~{left:.0f} s left")
        log.info(line, extra={STEP_LINE: True})
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{metrics['train/loss']:.4f}", refresh=False)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
