"""Plugins: the groups whose options are modules (technique, protocol), the kinds of task (a
task config names its kind: a module of xlt/tasks), what such a module must define, and its
options typed by the dataclass it declares.

A plugin module (xlt/techniques/NAME.py, xlt/protocols/NAME.py, or any importable module named by
`<group>.module`) may declare `Options`, a dataclass extending its group's base config with its
own typed options and their defaults, and `check(cfg)`, its own checks of a typed job config. xlt
registers the built-in ones' `Options` in Hydra's ConfigStore (`xlt_options/<group>/<name>`, which
their conf/ files list in their defaults), so Hydra types their overrides as it composes; a
plugin's of one's own are typed here, as every job is validated. Nothing here names a technique
or a protocol: this layer finds them by the group's package.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import importlib.util
import pkgutil
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional, Protocol, runtime_checkable

from omegaconf import DictConfig, OmegaConf

from xlt.config.schema import ProtocolConfig, TaskConfig, TechniqueConfig
from xlt.core.errors import ConfigError

OPTIONS_GROUP = "xlt_options"  # ConfigStore: xlt_options/<group>/<name>, the schema conf/<group>/<name>.yaml extends


@runtime_checkable
class Technique(Protocol):
    """What a technique module defines (optional: `Options`, `check(cfg)`, and `save_weights(model,
    directory)` / `load_weights(model, directory)`, the trained weights in their smallest form)."""

    def prepare(self, model, newly_initialised: List[str], cfg: TechniqueConfig) -> None:
        """Set `requires_grad` on what trains, adding what it trains if need be (adapters)."""

    def caches_features(self, cfg: TechniqueConfig) -> bool:
        """Whether the encoder never changes, so that its pooled features may be computed once."""


@runtime_checkable
class TransferProtocol(Protocol):
    """What a protocol module defines (optional: `Options`, `check(cfg)`, and `eval_languages`,
    `dev_languages`, `expand`, each of a job config, which default to zero-shot's: xlt.protocols)."""

    NEEDS_TARGET: bool  # whether a job needs a target language in languages.eval
    SELECTION: str  # why `train.select=dev` selects on `dev_languages`, logged with each run

    def train_parts(self, cfg) -> list:
        """The `xlt.protocols.Part`s a job trains on: a language's split each."""


@runtime_checkable
class TaskKind(Protocol):
    """What a kind of task defines (xlt/tasks/__init__.py says what each member does)."""

    METRICS: tuple  # the metrics it logs per language; the first selects and headlines unless task.metric says
    STATISTICS: tuple  # the per-example counts its metrics are functions of the sums of
    PEFT_TASK_TYPE: str  # peft's task type for its head
    POOLED: bool  # whether its head reads one pooled vector per row (model.pooling; cached features)

    def columns(self, task) -> list:
        """The columns a row holds."""

    def row_problem(self, row: dict, task) -> Optional[str]:
        """What is wrong with a row, or None."""

    def encode(self, rows: dict, tokenizer, task, max_length: int) -> dict:
        """A batch of rows as model inputs (with `labels`, `length`, `row`)."""

    def model_class(self, tiny: bool) -> type:
        """The transformers class of its head (tiny: the random BERT's)."""

    def collator(self, tokenizer):
        """Pads a batch."""

    def preprocess_logits(self, logits, labels):
        """What evaluation keeps of a batch's logits."""

    def metrics(self, predictions, label_ids, task, features=None) -> dict:
        """A language's metrics from what evaluation kept (`features`: the evaluated split, encoded)."""

    def example_statistics(self, predictions, label_ids, task, features=None):
        """Per example, the counts its metrics are sums of (examples x len(STATISTICS))."""

    def score(self, metric: str, sums):
        """A metric from summed statistics (the last axis): how a resample is scored."""

    def prediction_alarms(self, task, train_language: str, tested: dict, features=None) -> list:
        """Signs of a broken run in its test predictions ({lang: (what evaluation kept, gold labels)})."""

    def prediction_arrays(self, predictions, label_ids, task, features=None) -> dict:
        """What a language's per-example predictions file keeps (xlt.tracking.predictions)."""


@dataclass(frozen=True)
class Group:
    """A config group whose options are plugin modules."""
    key: str  # the config node: technique
    package: str  # where its built-in modules live: xlt.techniques
    base: type  # the dataclass every option's `Options` extends
    interface: type  # the Protocol its modules follow
    name_key: str = "name"  # the node's field naming the module (a task names its kind)


GROUPS: Dict[str, Group] = {g.key: g for g in (
    Group("technique", "xlt.techniques", TechniqueConfig, Technique),
    Group("protocol", "xlt.protocols", ProtocolConfig, TransferProtocol),
)}
# A task's kind may extend the task's config with its own options (question answering's windows).
KINDS = Group("task", "xlt.tasks", TaskConfig, TaskKind, name_key="kind")
_ALL = {**GROUPS, KINDS.key: KINDS}


def builtin_modules(package: str) -> List[str]:
    """The modules a package of plugins ships (listed, not imported; `_name` modules are helpers)."""
    spec = importlib.util.find_spec(package)
    return sorted(m.name for m in pkgutil.iter_modules(spec.submodule_search_locations) if not m.name.startswith("_"))


def _node(cfg, key: str):
    return cfg[key] if isinstance(cfg, (dict, DictConfig)) else getattr(cfg, key)


def module_path(group: str, node) -> str:
    """The importable module of a group's node: `<group>.module`, else PACKAGE.NAME; a
    ConfigError naming the field where there is none."""
    g = _ALL[group]
    name, module = _node(node, g.name_key), _node(node, "module")
    path = module or f"{g.package}.{name}"
    try:
        found = importlib.util.find_spec(path) is not None
    except (ImportError, ValueError):  # a parent package that does not exist
        found = False
    if found:
        return path
    if module:
        raise ConfigError(f"{group}.module", f"no module {path!r} can be imported; check the name and PYTHONPATH")
    allowed = ", ".join(builtin_modules(g.package))
    raise ConfigError(f"{group}.{g.name_key}", f"unknown value {name!r}; allowed: {allowed} "
                                       f"(or set {group}.module)")


def load(group: str, node) -> ModuleType:
    """A group's plugin module, checked against its interface: one line names what it lacks."""
    path = module_path(group, node)
    module = importlib.import_module(path)
    g = _ALL[group]
    interface = g.interface
    missing = [name for name in _members(interface) if not hasattr(module, name)]
    if missing:
        raise ConfigError(f"{group}.{g.name_key}" if path.startswith(g.package + ".") else f"{group}.module",
                          f"{path} lacks {', '.join(missing)}, which a {group} defines "
                          f"({interface.__module__}.{interface.__name__})")
    return module


def _members(interface: type) -> List[str]:
    return sorted(set(getattr(interface, "__annotations__", {})) |
                  {n for n, v in vars(interface).items() if callable(v) and not n.startswith("_")})


def options_class(module: ModuleType, group: str) -> type:
    """The module's `Options` dataclass, or its group's base where it declares none."""
    g = _ALL[group]
    options = getattr(module, "Options", g.base)
    if not (isinstance(options, type) and issubclass(options, g.base) and dataclasses.is_dataclass(options)):
        raise ConfigError(f"{group}.{g.name_key}", f"{module.__name__}.Options must be a dataclass extending "
                                                   f"{g.base.__name__}")
    return options


def typed_options(group: str, node) -> Any:
    """A group's node (a DictConfig, dict or dataclass) as its plugin's `Options`: types checked,
    defaults filled, unknown keys refused with a suggestion."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    options = options_class(load(group, node), group)
    if isinstance(node, options):
        return node
    raw = dataclasses.asdict(node) if dataclasses.is_dataclass(node) else node
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(options), raw))
    except OmegaConfBaseException as e:
        key = f"{group}.{e.full_key}" if getattr(e, "full_key", None) else group
        message = str(getattr(e, "msg", "") or e).strip().splitlines()[0].rstrip(".")
        hint = suggest_option(key, options) if isinstance(e, (ConfigKeyError, ConfigAttributeError)) else ""
        raise ConfigError(key, message + hint) from None


def run_check(group: str, cfg) -> None:
    """The plugin's own `check(cfg)` of a typed job config, where it defines one."""
    check: Optional[Callable] = getattr(load(group, _node(cfg, group)), "check", None)
    if check is not None:
        check(cfg)


@functools.cache
def registered_options() -> Dict[str, Dict[str, type]]:
    """{group: {name: Options}} of the built-in plugins (imports their modules: light ones), found
    once per process: every check and every suggestion reads it."""
    found: Dict[str, Dict[str, type]] = {}
    for key, g in _ALL.items():
        modules = {name: importlib.import_module(f"{g.package}.{name}") for name in builtin_modules(g.package)}
        found[key] = {name: options_class(module, key) for name, module in modules.items()}
    return found


def register_options() -> None:
    """Each built-in plugin's `Options` in Hydra's ConfigStore, as xlt_options/<group>/<name>."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for group, options in registered_options().items():
        for name, node in options.items():
            store.store(group=f"{OPTIONS_GROUP}/{group}", name=name, node=node, provider="xlt")


def _paths(options: type, prefix: str = "") -> List[str]:
    """Every field of an options dataclass as a dotted path, nested ones too: train, train.epochs."""
    out = []
    for f in dataclasses.fields(options):
        out.append(prefix + f.name)
        inner = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(inner):
            out += _paths(type(inner), f"{prefix}{f.name}.")
    return out


def suggest_option(key: str, chosen: Optional[type] = None) -> str:
    """For a key of a plugin group that the chosen option (its `Options`, where known) lacks:
    '; did you mean <group>.<path>?' where one of its fields is close (the same leaf name, or a
    near spelling), else '; it is an option of <group>=<name>: ...' where a built-in option has
    it, else ''."""
    group, _, rest = key.partition(".")
    if group not in _ALL or not rest:
        return ""
    owners: Dict[str, List[str]] = {}
    chooser = group if group in GROUPS else f"{group}.{_ALL[group].name_key}"  # a task chooses its kind
    for name, options in registered_options()[group].items():
        for path in _paths(options):
            owners.setdefault(path, []).append(f"{chooser}={name}")
    if rest in owners and len(owners[rest]) < len(registered_options()[group]):
        return f"; it is an option of {' and '.join(owners[rest])}: choose it, or leave {key} out"
    # `chosen` is the plugin's Options, or the dataclass of a node inside it (technique.train: TrainingDefaults).
    inside = "" if chosen is None or issubclass(chosen, _ALL[group].base) else rest.rpartition(".")[0] + "."
    close = _closest(rest, [inside + p for p in _paths(chosen)] if chosen else list(owners))
    return f"; did you mean {group}.{close}?" if close else ""


def _closest(path: str, paths: List[str]) -> Optional[str]:
    leaf = path.rsplit(".", 1)[-1]
    close = [p for p in paths if p.rsplit(".", 1)[-1] == leaf] or difflib.get_close_matches(path, paths, n=1,
                                                                                            cutoff=0.6)
    return close[0] if close else None


def suggest_field(key: str, node) -> str:
    """'; did you mean <group>.<path>?' for a key the plugin of `node` (a composed group node, of a
    plugin of one's own too) lacks, from the fields of its `Options`."""
    group, _, rest = key.partition(".")
    options = options_class(load(group, node), group)
    if rest in _paths(options):  # a field its YAML leaves out: the node is typed only as the job is validated
        return f"; {options.__module__} has it, but its config leaves it out: write +{key}=..."
    return suggest_option(key, options)
