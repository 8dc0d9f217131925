"""The techniques layer: one module per technique, each with its config conf/technique/NAME.yaml.

A technique module answers the two questions a job asks it:

    prepare(model, newly_initialised, cfg) -> None
        set `requires_grad` on what trains (`newly_initialised`: the parameters the checkpoint
        lacked; `cfg`: the job's TechniqueConfig)
    caches_features(cfg) -> bool
        whether the encoder never changes, so that its pooled features may be computed once

Its training defaults (learning rate, epochs) live in its YAML file, which presets and the
command line override. `load_technique` finds the module: xlt/techniques/NAME.py, or
`technique.module` for a technique of your own (README: How xlt is built).
"""
from __future__ import annotations

import importlib
from types import ModuleType

from xlt.config import TechniqueConfig, technique_module


def load_technique(cfg: TechniqueConfig) -> ModuleType:
    """The module of a validated technique config."""
    return importlib.import_module(technique_module(cfg))
