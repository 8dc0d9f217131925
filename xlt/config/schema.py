"""The typed schema of an xlt job: one dataclass per concern, composed into `XltConfig`.

Registered in Hydra's ConfigStore as `xlt_schema`, which `conf/config.yaml` lists first in its
defaults, so Hydra type-checks every override on composition; `xlt.config.validate` then checks
what types cannot express. Nothing here imports torch or transformers: it stays instant.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from omegaconf import MISSING


@dataclass
class TinyShape:
    """Shape of the randomly initialised BERT used for offline smoke runs."""
    vocab_size: int = 2000  # of its WordPiece tokenizer, trained on the bundled sample
    hidden_size: int = 64
    num_layers: int = 2  # transformer layers
    num_heads: int = 2  # attention heads: hidden_size must be a multiple
    intermediate_size: int = 128  # the feed-forward layers' width


@dataclass
class ModelConfig:
    name: str = MISSING  # short label used in run names and params, e.g. mbert
    source: str = "hub"  # hub | local | tiny
    path: Optional[str] = None  # hub id or local directory (unused for tiny)
    # Hub branch, tag or commit; resolved to a commit once per sweep, which every job loads.
    revision: str = "main"
    tiny: Optional[TinyShape] = None
    # What the classification head reads: `cls`, the first token's state (the heads'
    # own choice), `mean`, the masked mean of the last layer (for models trained with
    # mean pooling, e.g. multilingual-e5), or `auto`: the checkpoint's sentence-transformers
    # pooling config where it has one, else `cls` (xlt/model/pooling.py).
    pooling: str = "auto"


@dataclass
class TaskConfig:
    """What a task's data is: conf/task/NAME.yaml, e.g. xnli. It names its kind, a module of
    xlt/tasks (or `module`) that owns everything that differs between kinds: encoding, head,
    collator, metrics, predictions. Code asks the kind, never the task's name."""
    name: str = MISSING  # xnli, pawsx, panx: in run names and params
    labels: List[str] = MISSING  # label names, in label-id order (a row's label is the id)
    text_fields: List[str] = MISSING  # the columns the encoder reads, in this order (a pair; a token list)
    languages: List[str] = MISSING  # every language the task has
    hub_id: str = MISSING  # the dataset repo on the Hugging Face Hub
    # A split's files in the hub repo where its card's `configs:` names none ({lang}, {split}).
    hub_files: str = "{lang}/{split}-*"
    # Since the tasks layer (fields below): left at their defaults, they leave a job's hash as it was.
    kind: str = "sentence_classification"  # a module of xlt/tasks: sentence_, token_classification, question_answering
    module: Optional[str] = None  # the kind's module when it lives outside xlt/tasks
    label_field: str = "label"  # the column holding a row's label (its tags, for a token task)
    # The metric that selects weights and headlines the report; null: the kind's first (accuracy, f1).
    metric: Optional[str] = None
    # A language's config in the hub repo, where it is not the code: `PAN-X.{lang}`, `udpos.{language}`
    # ({language}: the code's entry in language_names).
    hub_config: str = "{lang}"
    language_names: Dict[str, str] = field(default_factory=dict)
    # The protocols the task's data supports (null: all); e.g. no translated training data for NER.
    protocols: Optional[List[str]] = None
    # The languages with a validation split (null: every one); the others are tested only (XQuAD has
    # no validation split: SQuAD's English dev selects).
    validated: Optional[List[str]] = None
    # Each split's hub config and split where they are not `hub_config` and the split's own name:
    # {train: SQuAD/train, test: "XQuAD.{lang}/validation"} (XQuAD's test is its only split). A slice
    # in datasets' split syntax takes part of a split: `tydiqa/train[-10%:]` (held out for validation).
    hub_splits: Dict[str, str] = field(default_factory=dict)
    # Where one hub config holds every language: a row is a language's where its `id` starts with
    # this ({lang}, {language}), e.g. TyDiQA's "{language}-" (`arabic-...`).
    hub_row_prefix: str = ""


@dataclass
class ProtocolConfig:
    """What every protocol has: conf/protocol/NAME.yaml names a module of xlt/protocols (or
    `module`), whose `Options` extend this with the protocol's own options (xlt.config.plugins)."""
    name: str = MISSING
    module: Optional[str] = None  # the protocol's module when it lives outside xlt/protocols


@dataclass
class TrainingDefaults:
    """A technique's own training budget: each field fills the `train` field of the same name that
    the command line, a preset or train.* leave unset (null). One technique's values stay its own
    in a grid of several (conf/technique/)."""
    learning_rate: float = 5e-5  # peak learning rate (linear decay after train.warmup)
    epochs: float = 3.0  # passes over the training rows (fractions allowed)
    batch_size: int = 32  # training rows per optimizer step
    # `selected`: write the weights train.select picked to <job dir>/selected and log them as an
    # MLflow artifact, in the smallest form that reloads (xlt.load_saved); `none`: keep nothing.
    save: str = "none"


@dataclass
class TechniqueConfig:
    """What every technique has: conf/technique/NAME.yaml names a module of xlt/techniques (or
    `module`), whose `Options` extend this with the technique's own options and training budget."""
    name: str = MISSING
    module: Optional[str] = None  # the technique's module when it lives outside xlt/techniques
    train: TrainingDefaults = field(default_factory=TrainingDefaults)


@dataclass
class LanguagesConfig:
    name: str = MISSING  # the group option's name: xnli6, xnli15, pawsx7
    eval: List[str] = MISSING  # the languages every job validates and tests, the training one among them


@dataclass
class DataConfig:
    name: str = MISSING  # the group option's name: the task's (hub), jsonl, sample
    source: str = "hub"  # hub | jsonl | conllu | sample
    hub_id: str = "${task.hub_id}"  # or a local copy of the hub repo (its directory)
    revision: str = "main"  # hub branch, tag or commit, resolved once per sweep like model.revision
    dir: Optional[str] = None  # jsonl: holds {split}.{lang}.jsonl (conllu: {split}.{lang}.conllu)
    train_language: str = "en"
    # Rows per language of every evaluated split (validation and test): the size knob of a small
    # run. max_eval_samples (validation) and max_test_samples (test) win for their split.
    max_samples: Optional[int] = None
    max_eval_samples: Optional[int] = None  # per language, validation split
    max_test_samples: Optional[int] = None  # per language, test split


@dataclass
class TrainConfig:
    # null: the technique's own (technique.train: conf/technique/NAME.yaml), so that a grid of
    # techniques keeps each one's budget; a value here sets it for every technique of the job.
    batch_size: Optional[int] = None
    eval_batch_size: int = 128  # rows per evaluation batch (no gradients: larger than training's)
    learning_rate: Optional[float] = None  # null: the technique's own
    epochs: Optional[float] = None  # null: the technique's own
    # Scales the epochs each job ends up with: train.budget=0.1 is every technique at a tenth of its own.
    budget: float = 1.0
    max_train_samples: Optional[int] = None
    max_length: int = 128
    eval_steps: Optional[int] = None  # None: about EVAL_ROUNDS evaluation rounds per job (xlt.train.trainer)
    logging_steps: Optional[int] = None  # None: about PROGRESS_LINES progress lines per job
    weight_decay: float = 0.0
    warmup: float = 0.0  # fraction of the training steps
    seed: int = 42
    precision: str = "auto"  # auto = bf16 on GPUs that support it, else fp32
    # Which weights are tested at the end (xlt/train/selection.py): the evaluation round with the
    # best accuracy on the protocol's own validation set (`dev`: zero-shot and few-shot English,
    # translate-train the target's, see xlt/protocols), on English validation (`en_dev`), the
    # last one (`last`), the best mean target-language one (`target_dev`, an oracle), or the mean
    # of the last `average_last` rounds' trainable weights (`average_last`: no dev set looked at).
    select: str = "dev"
    average_last: int = 3
    dropout: Optional[float] = None  # the classification head's dropout; None: the checkpoint's
    save: Optional[str] = None  # none | selected; null: the technique's (technique.train.save)


@dataclass
class AimConfig:
    sync: bool = True  # after a sweep (or a single run), sync the MLflow store into `repo`
    repo: Optional[str] = None  # None: <output_dir>/aim
    callback: bool = False  # also log through Aim's own Trainer callback, into <output_dir>/aim_callback


@dataclass
class TrackingConfig:
    uri: Optional[str] = None  # None: sqlite database under output_dir
    experiment: str = "xlt"
    tags: Dict[str, str] = field(default_factory=dict)  # extra MLflow tags for every run
    aim: AimConfig = field(default_factory=AimConfig)
    # Seconds between a run's heartbeats (xlt.tracking.heartbeat): a run silent for 6 of them is dead.
    # At least MIN_BEAT_S: a beat is a store write, and a busy store delays them.
    heartbeat_s: float = 10.0


@dataclass
class SweepConfig:
    # Rerunning a sweep skips each job whose run already FINISHED with the same config.
    skip_finished: bool = True


@dataclass
class XltConfig:
    task: TaskConfig = field(default_factory=TaskConfig)
    # A plugin's node holds its own options: typed by its module's `Options` (a ProtocolConfig or
    # TechniqueConfig subclass) when composed, or by xlt.config.plugins when validated.
    protocol: Any = MISSING
    model: ModelConfig = field(default_factory=ModelConfig)
    technique: Any = MISSING
    languages: LanguagesConfig = field(default_factory=LanguagesConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    output_dir: str = "logs"

    @property
    def tracking_uri(self) -> str:
        if self.tracking.uri:
            return self.tracking.uri
        return "sqlite:///" + str(Path(self.output_dir).resolve() / "mlflow.db")

    @property
    def cache_dir(self) -> Path:
        return Path(self.output_dir).resolve() / "cache"

    @property
    def aim_repo(self) -> Path:
        return Path(self.tracking.aim.repo or Path(self.output_dir) / "aim").resolve()

    @property
    def aim_callback_repo(self) -> Path:
        return Path(self.output_dir).resolve() / "aim_callback"


MIN_BEAT_S = 0.5  # tracking.heartbeat_s's floor

# Fields that change where or how a job is recorded, not what it computes.
_NOT_HASHED = ("tracking", "sweep", "output_dir")
_TASK_FIELDS_SINCE_KINDS = {f.name: (f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default)
                            for f in dataclasses.fields(TaskConfig)
                            if f.name in ("kind", "module", "label_field", "metric", "hub_config", "language_names",
                                          "protocols", "validated", "hub_splits", "hub_row_prefix")}


def job_fields(cfg: XltConfig) -> Dict[str, Any]:
    """A validated job's config as a dict, without the technique's training defaults: validation
    has folded them into `train`, which holds what the job trains with."""
    job = dataclasses.asdict(cfg)
    job["technique"].pop("train", None)
    return job


def config_hash(cfg: XltConfig) -> str:
    """A short hash of what a validated job computes: same hash, same results (same code)."""
    job = job_fields(cfg)
    for key in _NOT_HASHED:
        job.pop(key)
    for name, default in _TASK_FIELDS_SINCE_KINDS.items():  # runs made before the tasks layer keep their identity
        if job["task"].get(name) == default:
            job["task"].pop(name)
    return hashlib.sha256(json.dumps(job, sort_keys=True).encode()).hexdigest()[:16]


def register_schema() -> None:
    """`xlt_schema` in Hydra's ConfigStore: conf/config.yaml composes onto it; with it, the
    built-in plugins' options (xlt.config.plugins), which conf/technique and conf/protocol extend."""
    from hydra.core.config_store import ConfigStore

    from xlt.config.plugins import register_options

    ConfigStore.instance().store(name="xlt_schema", node=XltConfig)
    register_options()
