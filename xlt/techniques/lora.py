"""LoRA (Hu et al., 2022) through Hugging Face peft: low-rank adapters on the encoder's attention
projections train, the pretrained weights stay frozen, the head trains in full
(conf/technique/lora.yaml; options under technique.lora: `LoraOptions`).

The adapters are injected into the transformers model in place, so every other part of xlt
(pooling, heads, selection, checkpoints) sees the same model class. Saved weights are peft's
own format, the head included as `modules_to_save`: `PeftModel.from_pretrained(base, directory)`
reloads the trained classifier.
"""
from __future__ import annotations

import dataclasses
import difflib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional

from xlt.config import ModelConfig, TechniqueConfig, TrainingDefaults, XltConfig
from xlt.config.validate import positive
from xlt.core.errors import ConfigError
from xlt.model.freezing import freeze_encoder
from xlt.model.loading import encoder_config, linear_layers, linear_names

log = logging.getLogger(__name__)
ADAPTER_FILE = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."  # where a PeftModel holds the transformers model
# peft's table of each model type's attention projections lacks DistilBERT's.
MORE_TARGETS = {"distilbert": ["q_lin", "v_lin"]}


@dataclass
class LoraOptions:
    """LoRA adapters: rank, scale alpha/rank, their dropout, where they go."""
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.1
    # `auto`: the attention projections peft names for the architecture (BERT and XLM-R
    # query/value, DistilBERT q_lin/v_lin); or a list of module names, e.g. [query,key,value].
    target_modules: Any = "auto"


@dataclass
class Options(TechniqueConfig):
    lora: LoraOptions = field(default_factory=LoraOptions)
    # Adapters start at zero and are few: at the whole network's 5e-5 they barely move (chance after
    # 63 steps at 5e-4, measured); 1e-3 with batches of 16 (twice the updates per epoch) learned in
    # a pilot on 4,000 rows (BENCHMARKS.md: the techniques). Their weights are a few MB: kept.
    train: TrainingDefaults = field(default_factory=lambda: TrainingDefaults(
        learning_rate=1e-3, batch_size=16, save="selected"))


def check(cfg: XltConfig) -> None:
    lora = cfg.technique.lora
    positive("technique.lora.rank", lora.rank)
    positive("technique.lora.alpha", lora.alpha)
    if not 0 <= lora.dropout < 1:
        raise ConfigError("technique.lora.dropout", f"is a probability in [0, 1), got {lora.dropout}")
    targets = lora.target_modules
    if targets == "auto":
        return
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) and t for t in targets):
        raise ConfigError("technique.lora.target_modules", f"is auto or a list of module names, got {targets!r}; "
                                                           "e.g. technique.lora.target_modules=[query,value]")
    _check_targets(cfg.model, targets)


def _check_targets(model: ModelConfig, targets: List[str]) -> None:
    """Every name given is a linear layer of the model, known before any job where its config can be
    read offline (peft would adapt the others silently, or fail as each job builds its model)."""
    layers = _layers_of(model)
    unknown = [t for t in targets if layers is not None and t not in layers]
    if unknown:
        named = [t + "".join(f" (did you mean {c}?)" for c in difflib.get_close_matches(t, layers, n=1))
                 for t in unknown]
        raise ConfigError("technique.lora.target_modules", f"{', '.join(named)}: no linear layer of model "
                                                           f"{model.name}; its linear layers: {', '.join(layers)}")


_LAYERS: dict = {}  # (source, path, revision, shape) -> its linear layers: read once per process, not per job


def _layers_of(model: ModelConfig) -> Optional[List[str]]:
    key = (model.source, model.path, model.revision, repr(model.tiny))
    if key not in _LAYERS:
        config = encoder_config(model)
        _LAYERS[key] = None if config is None else linear_layers(config)
    return _LAYERS[key]


def target_modules(model, options: LoraOptions) -> List[str]:
    """The modules that get adapters: the list given, or for `auto` the attention projections
    peft names for the model type (query/value for BERT and XLM-R)."""
    if options.target_modules != "auto":
        return list(options.target_modules)
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_TARGETS

    kind = model.config.model_type
    targets = PEFT_TARGETS.get(kind) or MORE_TARGETS.get(kind)
    if not targets:
        raise ConfigError("technique.lora.target_modules", f"peft names no attention projections for model type "
                                                           f"{kind!r}; list them: one or more of {_linear(model)}")
    return list(targets)


def _linear(model) -> str:
    return ", ".join(linear_names(model.base_model))


def prepare(model, newly_initialised: List[str], cfg: Options) -> None:
    from peft import LoraConfig, inject_adapter_in_model

    options = cfg.lora
    targets = target_modules(model, options)
    config = LoraConfig(r=options.rank, lora_alpha=options.alpha, lora_dropout=options.dropout, target_modules=targets)
    try:
        inject_adapter_in_model(config, model)
    except ValueError as e:  # none of the names is a module of this model
        raise ConfigError("technique.lora.target_modules", f"{targets} match no module of this "
                                                           f"{model.config.model_type} model; its linear layers: "
                                                           f"{_linear(model)}") from e
    adapters = [name for name, _ in model.named_parameters() if ".lora_" in name]
    freeze_encoder(model, newly_initialised, keep=adapters)
    adapted = sorted({name.split(".lora_")[0].rsplit(".", 1)[1] for name in adapters})
    log.info("LoRA (rank %d, alpha %g): adapters on %d modules (%s)", options.rank, options.alpha,
             len(adapters) // 2, ", ".join(adapted))


def caches_features(cfg: Options) -> bool:
    return False  # the adapters change the encoder's output at every step


def _head(model) -> dict:
    """The trainable parameters outside the adapters: the head (and a newly initialised pooler)."""
    return {name: p for name, p in model.named_parameters() if p.requires_grad and ".lora_" not in name}


def save_weights(model, directory: Path) -> None:
    """peft's adapter files, with the head as `modules_to_save`, as `PeftModel.save_pretrained`
    writes them."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    head = _head(model)
    state = {**get_peft_model_state_dict(model), **{name: p.detach() for name, p in head.items()}}
    save_file({PEFT_PREFIX + name: t.cpu().contiguous() for name, t in state.items()},
              str(Path(directory) / ADAPTER_FILE))
    config = dataclasses.replace(model.peft_config["default"], task_type=getattr(model, "peft_task_type", "SEQ_CLS"),
                                 inference_mode=True,
                                 modules_to_save=sorted({name.rsplit(".", 1)[0] for name in head}),
                                 base_model_name_or_path=model.name_or_path or None)
    config.save_pretrained(directory)


def load_weights(model, directory: Path) -> None:
    """Into a model prepared by `prepare`: the adapters through peft, the head as it is named."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    state = {name[len(PEFT_PREFIX):]: t for name, t in load_file(str(Path(directory) / ADAPTER_FILE)).items()}
    adapters = {name: t for name, t in state.items() if ".lora_" in name}
    set_peft_model_state_dict(model, adapters)
    model.load_state_dict({name: t for name, t in state.items() if name not in adapters}, strict=False)
