"""Trainer setup: dynamic padding, length-grouped batches, per-language evaluation; the collator,
metrics and what evaluation keeps of the logits are the task kind's (xlt.tasks)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import List

import torch
from transformers import (
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    default_data_collator,
)

from xlt.config import XltConfig
from xlt.data.splits import EncodedData
from xlt.tasks import task_kind

EVAL_ROUNDS = 5  # evaluation rounds per job where train.eval_steps is not given
PROGRESS_LINES = 20  # progress lines per job where train.logging_steps is not given


@dataclass(frozen=True)
class Schedule:
    """How many optimizer steps a job takes, and how often it evaluates and reports progress."""
    steps: int
    eval_steps: int
    logging_steps: int


def schedule(cfg: XltConfig, train_rows: int) -> Schedule:
    """The job's steps (as Trainer counts them: one device, no accumulation); the intervals the
    config leaves open scale with them, so that a small run reports as much as a large one."""
    steps = max(1, math.ceil(cfg.train.epochs * math.ceil(train_rows / cfg.train.batch_size)))
    return Schedule(steps, cfg.train.eval_steps or math.ceil(steps / EVAL_ROUNDS),
                    cfg.train.logging_steps or math.ceil(steps / PROGRESS_LINES))


def precision_flags(precision: str) -> dict:
    """bf16/fp16 autocast flags for TrainingArguments; `auto` picks bf16 where the GPU has it."""
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}


class _Trainer(Trainer):
    """Trainer, evaluating in the datasets' own order: xlt's evaluation splits are sorted by length
    already (little padding), and their order is how each prediction finds its test row
    (xlt.tracking.predictions); `group_by_length` would shuffle length groups there too. The split
    being evaluated, whole (`evaluated`), is what a task's metrics read beside the predictions
    (question answering maps a window's logits back to its context's characters)."""

    evaluated = None

    def _get_eval_sampler(self, eval_dataset):
        return torch.utils.data.SequentialSampler(eval_dataset)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        split = self.eval_dataset if eval_dataset is None else eval_dataset
        split = self.eval_dataset[split] if isinstance(split, str) else split
        self.evaluated = None if isinstance(split, dict) else split  # a dict: each of its splits comes back here
        return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix="test"):
        self.evaluated = test_dataset
        return super().predict(test_dataset, ignore_keys, metric_key_prefix)


def build_trainer(cfg: XltConfig, model, tokenizer, data: EncodedData, job_dir: Path,
                  callbacks: List[TrainerCallback], cached_features: bool = False) -> Trainer:
    """A Trainer over token ids (dynamic padding, length-grouped) or cached features."""
    t, plan, kind = cfg.train, schedule(cfg, len(data.train)), task_kind(cfg.task)
    args = TrainingArguments(
        output_dir=str(job_dir / "checkpoints"),
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.eval_batch_size,
        learning_rate=t.learning_rate,
        num_train_epochs=t.epochs,
        weight_decay=t.weight_decay,
        warmup_steps=float(t.warmup),  # a float in [0, 1) is a fraction of the steps
        seed=t.seed,
        eval_strategy="steps",
        eval_steps=plan.eval_steps,
        logging_steps=plan.logging_steps,
        save_strategy="no",
        report_to="none",
        # Token batches are grouped by the precomputed `length` column; features have no length.
        train_sampling_strategy="random" if cached_features else "group_by_length",
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        disable_tqdm=True,  # xlt.train.progress shows progress; Trainer's bars and dicts would interleave
        **precision_flags(t.precision),
    )
    def compute_metrics(prediction):
        return kind.metrics(prediction.predictions, prediction.label_ids, cfg.task, trainer.evaluated)

    trainer = _Trainer(
        model=model,
        args=args,
        train_dataset=data.train,
        eval_dataset=data.validation,  # a dict: Trainer prefixes each language's metrics
        processing_class=tokenizer,
        data_collator=default_data_collator if cached_features else kind.collator(tokenizer),
        compute_metrics=compute_metrics,
        preprocess_logits_for_metrics=kind.preprocess_logits,
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # prints every log record as a raw dict
    return trainer
