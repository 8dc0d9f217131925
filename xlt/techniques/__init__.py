"""The techniques layer: one module per technique, each with its config conf/technique/NAME.yaml.

A technique module follows `xlt.config.plugins.Technique`: it answers the questions a job asks it,

    prepare(model, newly_initialised, cfg) -> None
        set `requires_grad` on what trains, adding what it trains if need be (LoRA's adapters);
        `newly_initialised`: the parameters the checkpoint lacked; `cfg`: the job's technique options
    caches_features(cfg) -> bool
        whether the encoder never changes, so that its pooled features may be computed once
    save_weights(model, directory), load_weights(model, directory)    (optional)
        the trained weights in their smallest form that reloads, and back into a model that
        `prepare` made; by default the parameters that train (xlt.model.saving)

and owns its options: `Options`, a dataclass extending `TechniqueConfig` with its own fields and
its training budget (`train`: learning rate, epochs, batch size, what it saves), and `check(cfg)`
(both optional). `load_technique` finds the module: xlt/techniques/NAME.py, or `technique.module`
for a technique of your own (docs/extending.md).
"""
from __future__ import annotations

from pathlib import Path
from types import ModuleType

from xlt.config import ModelConfig, TaskConfig, TechniqueConfig, plugins
from xlt.data.hub import ModelSource
from xlt.model.loading import load_model, load_tokenizer
from xlt.model.saving import load_trainable, save_trainable
from xlt.tasks import task_kind


def load_technique(cfg: TechniqueConfig) -> ModuleType:
    """The module of a technique config, checked against the interface."""
    return plugins.load("technique", cfg)


def prepared_classifier(model: ModelConfig, source: ModelSource, task: TaskConfig, technique: TechniqueConfig):
    """(tokenizer, the model with the head of the task's kind over its labels, with the technique's
    choice of what trains, the names of the parameters the checkpoint lacked)."""
    tokenizer = load_tokenizer(model, source)
    kind = task_kind(task)
    classifier, newly_initialised = load_model(model, source, tokenizer, task.labels, kind)
    classifier.peft_task_type = kind.PEFT_TASK_TYPE  # what a technique saving peft's format writes as its head
    load_technique(technique).prepare(classifier, newly_initialised, technique)
    return tokenizer, classifier, newly_initialised


def save_weights(technique: ModuleType, model, directory: Path) -> None:
    getattr(technique, "save_weights", save_trainable)(model, directory)


def load_weights(technique: ModuleType, model, directory: Path) -> None:
    getattr(technique, "load_weights", load_trainable)(model, directory)
