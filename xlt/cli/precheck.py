"""Validate every job of a command line before Hydra launches the first one.

Hydra composes each job of a sweep only when the launcher reaches it, and reports a
bad value as a multi-line traceback. Here the whole grid (sweeper params included) is
composed up front with Hydra's own Compose API and checked against xlt's schema; the
first problem is reported as one line naming the field and the fix, exit code 2.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import List, Optional, Tuple

from xlt.config import CONF_DIR
from xlt.config.validate import check_writable
from xlt.core.errors import ConfigError, first_line
from xlt.sweep import grid

# What a saved tokenizer writes (fast or slow, WordPiece, BPE or SentencePiece).
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "sentencepiece.bpe.model", "spiece.model", "vocab.json",
                    "tokenizer.model")
# Launchers whose jobs run on other machines (their devices are not this one's).
_ELSEWHERE = ("SlurmLauncher", "RayLauncher", "RayAWSLauncher")


def _parse_argv(argv: List[str]) -> Tuple[List[str], bool, Path, str, bool]:
    """(overrides, multirun, config dir, config name, info-only), as Hydra's own parser reads argv."""
    from hydra._internal.utils import get_args_parser

    args = get_args_parser().parse_args(argv)
    info = bool(args.help or args.hydra_help or args.cfg or args.info or args.shell_completion or args.package
                or args.experimental_rerun)  # they print something (or replay a job) instead of running jobs
    config_dir = Path(args.config_dir or args.config_path or CONF_DIR)
    return args.overrides, args.multirun, config_dir.resolve(), args.config_name or "config", info


def job_overrides(overrides: List[str], multirun: bool, sweeper_params: dict) -> List[List[str]]:
    """The override list of every job the grid sweeper would launch."""
    return grid.jobs(sweeper_params, overrides) if multirun else [overrides]


def _search_corners(sweeper, params: dict, overrides: List[str]) -> List[List[str]]:
    """An Optuna search's jobs are drawn as it goes: check its settings and the ends of its ranges."""
    from xlt.sweep.search import check_settings, corner_jobs, search_space

    check_settings(sweeper)
    task = [o for o in overrides if not grid.is_hydra_key(o)]  # as Hydra passes them to its sweeper
    return corner_jobs(*search_space(grid.parse(grid.with_params(params, task))))


def group_options(group: str) -> List[str]:
    """A config group's options: conf/ files, and those xlt and Hydra's plugins registered."""
    from hydra.core.config_store import ConfigStore

    node = ConfigStore.instance().repo
    for part in group.split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    stored = {name[:-len(".yaml")] for name in node if name.endswith(".yaml")} if isinstance(node, dict) else set()
    return sorted(stored | {p.stem for p in (CONF_DIR / group).glob("*.yaml")})


_EXTRA = 'is not installed: pip install -e ".[{}]" (docs/how-to/cluster.md)'
# Options that Hydra's plugins register, and where they come from.
_PLUGIN_OPTIONS = {
    "hydra/launcher/ray": "Hydra's Ray launcher " + _EXTRA.format("ray"),
    "hydra/launcher/ray_aws": "Hydra's Ray launcher " + _EXTRA.format("ray"),
    "hydra/launcher/submitit_slurm": "Hydra's submitit launcher " + _EXTRA.format("slurm"),
    "hydra/launcher/submitit_local": "Hydra's submitit launcher " + _EXTRA.format("slurm"),
    "hydra/sweeper/optuna": "xlt drives Optuna itself: write hparams_search=optuna "
                            "(docs/how-to/hyperparameter-search.md)",
}


def _unset_section(overrides: List[str]) -> Optional[str]:
    """`technique.lora.rank=4` with technique=fine_tune: a field inside a section that the chosen
    option leaves empty (OmegaConf only asserts); the options of its group that set it."""
    from omegaconf import OmegaConf

    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        group, _, rest = key.partition(".")
        section = key.rpartition(".")[0]
        if not rest or section == group or not (CONF_DIR / group).is_dir():
            continue
        setting = []
        for path in sorted((CONF_DIR / group).glob("*.yaml")):
            text = path.read_text()  # a global package holds full keys; the group's own, keys below it
            where = section if "_global_" in text else rest.rpartition(".")[0]
            if OmegaConf.select(OmegaConf.create(text), where) is not None:
                setting.append(path.stem)
        if setting:
            return f"{key}: {section} is empty with this {group}; it is set by {group}={'|'.join(setting)}"
    return None


def _one_line(e: BaseException, overrides: List[str] = ()) -> str:
    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(e, ConfigError):
        return str(e)
    unset = _unset_section(overrides) if isinstance(e, AssertionError) and "NoneType" in str(e) else None
    if unset:
        return unset
    if isinstance(e, MissingConfigException) and e.missing_cfg_file:
        return _missing_option(e.missing_cfg_file)
    if isinstance(e, OverrideParseException):
        return _unparsed(e)
    cause = e
    while cause.__cause__ is not None and not isinstance(cause, OmegaConfBaseException):
        cause = cause.__cause__
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        message = str(getattr(cause, "msg", "") or cause).strip().splitlines()[0].rstrip(".")
        return f"{cause.full_key}: {_with_fix(cause.full_key, message, getattr(cause, 'object_type', None))}"
    # Hydra's own hints follow its first line (e.g. the three ways out of "Ambiguous value").
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    return "; ".join(lines) if lines else type(e).__name__


def _unparsed(e) -> str:
    """An override Hydra's grammar cannot read: its key, Hydra's reason, and the quoting that reads it."""
    key, _, value = e.override.partition("=")
    reason = e.message.splitlines()[0]
    if not value or value[:1] in "'\"[{":
        return f"{key}: Hydra cannot read {e.override!r}: {reason}"
    return f"{key}: Hydra cannot read {e.override!r}: {reason}; quote the value: {key}='{value}'"


def _missing_option(missing: str) -> str:
    """`group: unknown option 'x'; choose one of: ...`, or the extra that brings a plugin's option."""
    group, _, option = missing.rpartition("/")
    if missing in _PLUGIN_OPTIONS:
        return f"{group}={option}: {_PLUGIN_OPTIONS[missing]}"
    options = group_options(group) if group else []
    hint = f"; choose one of: {', '.join(options)}" if options else ""
    return f"{group or 'config'}: unknown option {option!r}{hint}"


def _with_fix(key: str, message: str, schema=None) -> str:
    """OmegaConf's message about `key`, with the fix; `schema`: the dataclass of the node that
    lacks `key` (a plugin's config for Hydra's own keys)."""
    from xlt.config import plugins, suggest

    if "Missing mandatory value" in message:
        return f"needs a value: add {key}=..."
    if "is not in struct" in message and key.startswith("hydra.sweeper.params."):
        return "a searched field is swept on the command line itself: e.g. train.weight_decay='interval(0, 0.1)'"
    if "is not in struct" in message:
        return message + f"; to add a new key, write +{key}=..."
    if "not in '" in message and key.startswith("hydra.") and dataclasses.is_dataclass(schema):
        return message + suggest(key, schema, key.rpartition(".")[0])  # e.g. hydra.launcher.n_job
    if "not in '" in message and key.partition(".")[0] in (*plugins.GROUPS, plugins.KINDS.key):  # a plugin's options
        return message + plugins.suggest_option(key, schema if dataclasses.is_dataclass(schema) else None)
    if "not in '" in message:  # a mistyped key or group name
        return message + suggest(key)
    if "is not a ListConfig" in message:
        return message + f"; write a list in brackets, {key}=[en,de] (under -m, a,b sweeps over values)"
    return message


def _check_hub(jobs) -> None:
    """Each hub model and dataset the jobs need, resolved once to the commit every job loads."""
    from xlt.data.hub import hub_reads, pin_all

    models = [(j.model.path, j.model.revision) for j in jobs if j.model.source == "hub"]
    datasets = {}
    for j in jobs:
        if j.data.source == "hub":
            datasets.setdefault((j.data.hub_id, j.data.revision, j.task.hub_files), set()).update(hub_reads(j))
    pin_all(models, datasets)


def _check_data(jobs) -> None:
    """Every local file the jobs read (JSONL, CoNLL-U), read once: a bad line fails here, not in a job."""
    from xlt.config.files import DIR_SOURCES
    from xlt.data.jsonl import read_local
    from xlt.protocols import local_files

    files = {path: j.task for j in jobs if j.data.source in DIR_SOURCES for path in local_files(j)}
    for path, task in files.items():
        if not any(read_local(path, task).values()):
            raise ConfigError("data.dir", f"{path} has no rows; give it one JSON object per line, or leave "
                                          "its language out of languages.eval")


def _check_local_data(jobs) -> None:
    """A local repo copy's columns and few-shot's K rows per target language (after the pins)."""
    from xlt.protocols import train_parts

    asking = [job for job in jobs if any(part.exact for part in train_parts(job))
              or (job.data.source == "hub" and Path(job.data.hub_id).expanduser().is_dir())]
    if asking:  # `datasets` only then: a start-up on the hub or JSONL stays light
        from xlt.data.splits import check_local_data

        for job in asking:
            check_local_data(job)


def _unreachable(address: str, timeout: float = 5.0) -> Optional[str]:
    """Why nothing listens at `host:port`, or None if something does (Ray's own calls wait for minutes)."""
    import socket

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return f"{address!r} is not host:port"
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except TimeoutError:
        return f"nothing answers at {address} within {timeout:.0f} s"
    except OSError as e:
        return f"cannot connect to {address} ({e.strerror or type(e).__name__})"
    return None


def _check_launcher(launcher) -> None:
    """What a plugin launcher needs from this machine, checked before any job is composed."""
    import shutil

    from xlt.sweep.plugins import LauncherConf

    target = str(launcher.get("_target_", ""))
    n_jobs = launcher.get("n_jobs")  # joblib's -1 (every core) is joblib's own
    if target == LauncherConf._target_ and isinstance(n_jobs, int) and n_jobs < 1:
        raise ConfigError("hydra.launcher.n_jobs", f"must be at least 1, got {n_jobs}")
    if target.endswith("submitit_launcher.SlurmLauncher") and not shutil.which("sbatch"):
        raise ConfigError("hydra/launcher", "SLURM's sbatch is not on this machine's PATH: submit from a login "
                          "node of the cluster, or try the grid here with hydra/launcher=submitit_local")
    if target.endswith("ray_launcher.RayLauncher"):
        address = str(launcher.ray.init.get("address") or "")
        problem = address not in ("", "auto", "local") and _unreachable(address.removeprefix("ray://"))
        if problem:
            raise ConfigError("hydra.launcher.ray.init.address", f"{problem}: start the cluster "
                              "(ray start --head) or fix the address; null starts a Ray of this machine")


MIN_FREE_MB = 50  # a tiny sweep's store, caches and checkpoints; a real encoder's need far more


def _check_space(jobs) -> None:
    """Room to write under each output_dir: free space, and a 1 MiB write (a quota or a file-size
    limit shows only then). A full disk met mid-run fails a job; met here, nothing starts."""
    import shutil
    import tempfile

    for output in dict.fromkeys(Path(j.output_dir).expanduser().absolute() for j in jobs):
        where = next(p for p in [output, *output.parents] if p.exists())
        free_mb = shutil.disk_usage(where).free / 2**20
        try:
            if free_mb < MIN_FREE_MB:
                raise OSError(28, f"{free_mb:.1f} MB free")
            with tempfile.TemporaryFile(dir=where) as f:
                f.write(b"\0" * 2**20)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise ConfigError("output_dir", f"{where} has no room to write ({e.strerror or e}); free some "
                                            f"space or give another output_dir (at least {MIN_FREE_MB} MB)") from None


def _check_tracking(jobs) -> None:
    """A server answers; a local store is a database, not damaged, writable, its experiment not deleted."""
    from xlt.tracking.server import server_problem
    from xlt.tracking.store import store_problem

    for uri in dict.fromkeys(j.tracking.uri for j in jobs if j.tracking.uri):
        problem = uri.startswith(("http://", "https://")) and server_problem(uri)
        if problem:
            raise ConfigError("tracking.uri", problem)
    for uri, experiment in dict.fromkeys((j.tracking_uri, j.tracking.experiment) for j in jobs):
        problem = store_problem(uri, experiment)
        if problem:
            raise ConfigError("tracking.experiment" if "deleted" in problem else "tracking.uri", problem)


def _commands(overrides: List[str], multirun: bool, config_name: str,
              machine: bool = True) -> Tuple[List[List[str]], bool]:
    """The override list of every job of the command, and whether the jobs run on this machine;
    for a sweep, its launcher checked first."""
    from hydra import compose

    if not multirun:
        return [overrides], True
    parsed = grid.parse(overrides)
    for o in parsed:
        if o.is_sweep_override() and grid.is_hydra_key(o.get_key_element()):
            raise ConfigError(o.get_key_element(), "Hydra's own settings cannot be swept; sweep "
                              "or search a job field itself, e.g. train.weight_decay='interval(0, 0.1)'")
    base = [o.input_line for o in parsed if not o.is_sweep_override()]
    hydra_cfg = compose(config_name, overrides=base, return_hydra_config=True).hydra
    params = dict(hydra_cfg.sweeper.get("params") or {})
    if machine:
        _check_launcher(hydra_cfg.launcher)
        check_writable("hydra.sweep.dir", Path(str(hydra_cfg.sweep.dir)).expanduser())
    here = not str(hydra_cfg.launcher.get("_target_", "")).endswith(_ELSEWHERE)
    if str(hydra_cfg.sweeper._target_).endswith("OptunaSweeper"):
        return _search_corners(hydra_cfg.sweeper, params, overrides), here
    return job_overrides(overrides, multirun, params), here


def _check_precision(jobs) -> None:
    """fp16 and bf16 need a GPU (Trainer's CPU path ignores fp16 and fails on bf16): checked where the
    jobs run on this machine; a cluster's nodes have their own devices."""
    wanted = {j.train.precision for j in jobs} & {"fp16", "bf16"}
    if not wanted:
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError("train.precision", f"{sorted(wanted)[0]} needs a GPU and this machine has none; "
                                             "use train.precision=auto (bf16 where a GPU has it, else fp32) or fp32")


def _check_tokenizers(jobs) -> None:
    """A local model's tokenizer loads and fits its embeddings (transformers builds a tiny vocabulary
    silently from a directory without tokenizer files, and the job trains at chance)."""
    for path in sorted({j.model.path for j in jobs if j.model.source == "local"}):
        from transformers import AutoTokenizer  # only for local models: a start-up without them stays light

        if not any((Path(path) / name).is_file() for name in _TOKENIZER_FILES):
            raise ConfigError("model.path", f"{path} has no tokenizer files ({', '.join(_TOKENIZER_FILES[:3])}, ...); "
                                            "save the tokenizer beside the model: tokenizer.save_pretrained(DIR)")
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
        except Exception as e:  # noqa: BLE001 - whatever transformers raises, the fix is the same
            raise ConfigError("model.path", f"the tokenizer in {path} does not load ({first_line(e)}); "
                                            "save it beside the model: tokenizer.save_pretrained(DIR)") from e
        size = len(tokenizer)
        if tokenizer.pad_token is None:  # xlt pads batches; decoders' tokenizers often have no pad token
            raise ConfigError("model.path", f"the tokenizer in {path} has no padding token, which batches need (a "
                                            "decoder's?); give an encoder checkpoint, or save its tokenizer with one")
        embeddings = json.loads((Path(path) / "config.json").read_text()).get("vocab_size")
        if embeddings and size > embeddings:
            raise ConfigError("model.path", f"the tokenizer in {path} has {size} tokens but the model embeds "
                                            f"{embeddings}: they do not belong together")


def check(overrides: List[str], multirun: bool = False, config_dir: Path = CONF_DIR,
          config_name: str = "config", machine: bool = True) -> Optional[str]:
    """The first problem with any job of this command, as one line; None if all are valid.
    `machine=False` checks the configs alone: not this machine (launcher, disk, devices), nor the
    files, servers and hub repos the jobs would read (the docs' commands, checked anywhere)."""
    from xlt.config import register_schema
    from xlt.sweep.plugins import register_plugin_configs

    register_schema()
    register_plugin_configs()
    try:
        jobs, here = _jobs(overrides, multirun, config_dir, config_name, machine)
        if machine:
            _check_inputs(jobs, here)
    except Exception as e:  # noqa: BLE001 - every composition or validation error becomes one line
        return _with_plugin_hint(_one_line(e, overrides), overrides, config_dir, config_name)
    return None


def _jobs(overrides: List[str], multirun: bool, config_dir: Path, config_name: str, machine: bool):
    """Every job of the command, composed and validated, and whether they run on this machine."""
    from hydra import compose, initialize_config_dir

    from xlt.config import validate
    from xlt.protocols import check as check_protocol

    with initialize_config_dir(str(config_dir), version_base="1.3"):
        commands, here = _commands(overrides, multirun, config_name, machine)

        def typed(job: List[str]):
            return validate(compose(config_name, overrides=job))

        if multirun:  # as the sweeper does: a protocol may make several jobs of one
            commands = grid.protocol_jobs(commands, typed)
        return [check_protocol(typed(job)) for job in commands], here


def _check_inputs(jobs, here: bool) -> None:
    """What the jobs need of this machine and of what they read."""
    if here:
        _check_precision(jobs)
    _check_tokenizers(jobs)
    _check_data(jobs)
    _check_space(jobs)
    _check_tracking(jobs)
    _check_hub(jobs)
    _check_local_data(jobs)


def _with_plugin_hint(line: str, overrides: List[str], config_dir: Path, config_name: str) -> str:
    """A key that a plugin of one's own lacks (its node is untyped until validated) gets the
    nearest field of the plugin's `Options`, from the job composed without that key."""
    from hydra import compose, initialize_config_dir

    from xlt.config import plugins

    key, _, message = line.partition(": ")
    if "is not in struct" not in message or key.partition(".")[0] not in plugins.GROUPS:
        return line
    rest = [o for o in overrides if o.lstrip("+~").split("=", 1)[0] != key]
    try:
        with initialize_config_dir(str(config_dir), version_base="1.3"):
            hint = plugins.suggest_field(key, compose(config_name, overrides=rest)[key.partition(".")[0]])
    except Exception:  # noqa: BLE001 - no hint then; the line stands as it is
        return line
    return f"{key}: {message.split(';')[0]}{hint}" if hint else line


def per_job_plugin_options(argv: List[str]) -> List[str]:
    """A sweep's argv with each option of a plugin group (protocol.shots=8) made a one-value sweep
    (`choice(8)`): Hydra composes a sweep's base config with its plain overrides, where zero_shot
    has no `shots`, while xlt's sweeper gives each job the options its plugin has (xlt.sweep.grid)."""
    from xlt.config.plugins import GROUPS

    if not ({"-m", "--multirun"} & set(argv)):
        return argv
    out = []
    for arg in argv:
        key = arg.split("=", 1)[0].lstrip("+~")
        if not arg.startswith("-") and "=" in arg and key.split(".")[0] in GROUPS and "." in key:
            (override,) = grid.parse([arg])
            if not override.is_sweep_override() and override.value() is not None:
                arg = f"{arg.split('=', 1)[0]}=choice({override.get_value_element_as_str()})"
        out.append(arg)
    return out


def check_command_line(argv: List[str]) -> None:
    overrides, multirun, config_dir, config_name, info = _parse_argv(argv)
    if info:
        return
    problem = check(overrides, multirun, config_dir, config_name)
    if problem:
        print(f"xlt: error: {problem}", file=sys.stderr)
        sys.exit(2)
