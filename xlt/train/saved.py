"""The weights `train.select` picked, kept: `train.save=selected` writes them to
<job dir>/selected in the technique's smallest form that reloads (LoRA: peft's adapter files
and the head; feature extraction and BitFit: the parameters that trained; fine-tuning: the
whole model, transformers' `save_pretrained`), with `xlt_saved.json` saying what they go with,
and logs the folder as the run's MLflow artifact `selected/`.

`xlt.load_saved(folder)` rebuilds the trained classifier from it for a notebook, and checks it:
the job stored its logits on a few probe pairs, which the rebuilt classifier must reproduce
(a changed base checkpoint would not).
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Tuple

from omegaconf import OmegaConf

from xlt.config import SAMPLE_DIR, ModelConfig, TaskConfig, plugins, task_preset
from xlt.core.errors import ConfigError
from xlt.data.hub import ModelSource
from xlt.data.jsonl import read_jsonl
from xlt.model.heads import PooledClassifier
from xlt.techniques import load_technique, load_weights, prepared_classifier, save_weights

log = logging.getLogger(__name__)
SAVED_DIR = "selected"  # in the job directory, and the run's artifact path
META_FILE = "xlt_saved.json"
PROBE_ROWS = 4  # pairs of the bundled sample whose logits a saved folder carries
TOLERANCE = 1e-4  # logits agree to float32 noise (another machine, another BLAS)


def probe_pairs() -> list:
    xnli = task_preset("xnli")
    rows = read_jsonl(SAMPLE_DIR / "test.en.jsonl", xnli)
    return [list(pair) for pair in zip(*(rows[field][:PROBE_ROWS] for field in xnli.text_fields))]


def probe_logits(reader, tokenizer, pairs: list, max_length: int) -> list:
    """The classifier's logits on the pairs, in eval mode, in float32."""
    import torch

    first, second = zip(*pairs)
    batch = tokenizer(list(first), list(second), padding=True, truncation=True, max_length=max_length,
                      return_tensors="pt").to(next(reader.parameters()).device)
    was_training = reader.training
    reader.eval()
    with torch.no_grad():  # every output of the head, flat per pair (a span head has two: start and end)
        logits = torch.cat([t.float().flatten(1) for t in reader(**batch).to_tuple()], dim=-1).cpu()
    reader.train(was_training)
    return logits.tolist()


def save_selected(job, model, tokenizer, pooling: str, step: int) -> Path:
    """Write the model's current weights (the selected ones, after testing) and log them."""
    import mlflow

    cfg, directory = job.cfg, job.info.dir / SAVED_DIR
    directory.mkdir(parents=True, exist_ok=True)
    save_weights(job.technique, model, directory)
    meta = {"run_id": mlflow.active_run().info.run_id, "step": step, "select": cfg.train.select,
            "model": dataclasses.asdict(cfg.model), "technique": dataclasses.asdict(cfg.technique),
            "source": dataclasses.asdict(job.source), "task": dataclasses.asdict(cfg.task),
            "pooling": pooling, "seed": cfg.train.seed, "max_length": cfg.train.max_length}
    pairs = probe_pairs()
    meta["probe"] = {"pairs": pairs, "logits": probe_logits(_reader(model, pooling), tokenizer, pairs,
                                                             cfg.train.max_length)}
    (directory / META_FILE).write_text(json.dumps(meta, indent=1))
    mlflow.log_artifacts(str(directory), SAVED_DIR)
    size = sum(f.stat().st_size for f in directory.iterdir())
    log.info("saved the weights of step %d (%s) to %s and the run's artifact %s/", step, _megabytes(size),
             directory, SAVED_DIR)
    return directory


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.0f} KB"


def _reader(model, pooling: str):
    """What reads token ids: the model's own head on the first token, or xlt's pooling first."""
    return model if pooling in ("cls", "none") else PooledClassifier(model, pooling)  # none: a head per token


def _typed(schema: type, values: dict):
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), values))


def load_saved(directory: str | Path) -> Tuple[object, object]:
    """(classifier in eval mode, tokenizer) from a folder `train.save=selected` wrote: the base
    weights the job started from, the technique's preparation, then the saved weights."""
    from transformers import set_seed

    directory = Path(directory)
    meta = json.loads((directory / META_FILE).read_text())
    technique = plugins.typed_options("technique", meta["technique"])
    set_seed(meta["seed"])  # the tiny model's random encoder is part of what was trained
    tokenizer, model, _ = prepared_classifier(_typed(ModelConfig, meta["model"]), ModelSource(**meta["source"]),
                                              _saved_task(meta), technique)
    load_weights(load_technique(technique), model, directory)
    reader = _reader(model, meta["pooling"]).eval()
    _check_probe(reader, tokenizer, meta, directory)
    return reader, tokenizer


def _saved_task(meta: dict) -> TaskConfig:
    """The task a folder was trained on (folders saved before the tasks layer name only its labels:
    sentence classification)."""
    if "task" in meta:
        return _typed(TaskConfig, meta["task"])
    return TaskConfig(name="saved", labels=meta["labels"], text_fields=[], languages=[], hub_id="")


def _check_probe(reader, tokenizer, meta: dict, directory: Path) -> None:
    import torch

    got = torch.tensor(probe_logits(reader, tokenizer, meta["probe"]["pairs"], meta["max_length"]))
    gap = (got - torch.tensor(meta["probe"]["logits"])).abs().max().item()
    if gap > TOLERANCE:
        raise ConfigError(str(directory), f"the reloaded classifier's logits differ from the job's by {gap:.2g}; "
                                          f"the base weights at {meta['source']['path']} are not the ones it "
                                          "trained from")
