"""Hugging Face Hub models and datasets, resolved once per sweep to the commit every job loads.

The sweep's own process asks the hub once per model and dataset (`pin_all`, called by the
precheck), through huggingface_hub's client, so proxies, `HF_ENDPOINT` and `HF_TOKEN` work
as they do for the hub libraries, and never longer than `HF_HUB_ETAG_TIMEOUT` seconds
(10 by default). The answers reach every job process, under any launcher, through the
environment: `XLT_HUB_PINS` says what each job loads, and `HF_HUB_OFFLINE=1` is set when the
hub did not answer but the cache holds everything, so that no job waits on the network.

A dataset is pinned with the files of each (language, split) the sweep reads, named by the
repo's own README `configs:`; a job downloads those files only.
"""
from __future__ import annotations

import fnmatch
import json
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from xlt.config.schema import DataConfig, ModelConfig, TaskConfig
from xlt.core.errors import ConfigError, first_line
from xlt.data.identity import content_hash, model_files
from xlt.protocols import splits_read

PINS_ENV = "XLT_HUB_PINS"
OFFLINE_MODEL = "use model=tiny or model=local model.path=DIR, or fill the Hugging Face cache where there is internet"
OFFLINE_DATA = ("use data=sample, data=jsonl data.dir=DIR or data.hub_id=DIR (a copy of the dataset repo), "
                "or fill the Hugging Face cache where there is internet")
COMMIT = re.compile(r"[0-9a-f]{40}")  # a full hub commit hash
_WEIGHTS = ("*.safetensors", "*.bin")


@dataclass
class Pin:
    """What a job loads for one (repo, revision)."""
    repo_id: str  # as loaded: the canonical id, the legacy id a cache was filled under, or a directory
    commit: str  # the hub's commit, or sha256:... of a local copy's files
    offline: bool = False  # answered from the cache: the hub did not answer
    files: Dict[str, List[str]] = field(default_factory=dict)  # dataset: "lang/split" -> files in the repo


@dataclass(frozen=True)
class ModelSource:
    """Where a job's weights come from, and their identity in caches and params."""
    path: Optional[str]  # for from_pretrained: a hub id or a directory (None: tiny)
    revision: Optional[str]  # the hub commit (None for a directory)
    identity: str  # repo@commit, or the sha256 of a directory's weights


def _timeout() -> float:
    from huggingface_hub import constants

    return float(constants.HF_HUB_ETAG_TIMEOUT)


def _key(repo_type: str, repo_id: str, revision: str) -> str:
    return f"{repo_type}:{repo_id}@{revision}"


def _ask(repo_type: str, repo_id: str, revision: str, field_: str):
    """The hub's answer for the repo (its info), or (None, why it gave none).

    A definite no (missing, gated, no such revision) is a ConfigError naming its cause.
    """
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    if constants.HF_HUB_OFFLINE:
        return None, "HF_HUB_OFFLINE is set"
    what = f"{repo_type} {repo_id!r}"
    try:
        return HfApi().repo_info(repo_id, repo_type=repo_type, revision=revision, timeout=_timeout()), None
    except GatedRepoError:
        raise ConfigError(field_, f"{what} is gated: accept its terms on the hub, then set HF_TOKEN") from None
    except RevisionNotFoundError:
        raise ConfigError(field_.rsplit(".", 1)[0] + ".revision",
                          f"{what} has no revision {revision!r}; give a branch, tag or commit") from None
    except RepositoryNotFoundError:
        raise ConfigError(field_, f"{what} is not on the Hugging Face Hub (private? set HF_TOKEN; "
                                  "renamed? give its new id)") from None
    except HfHubHTTPError as e:
        status = getattr(e.response, "status_code", None)
        if status is not None and status < 500:
            raise ConfigError(field_, f"the hub refused {what}: {first_line(e)}") from None
        return None, first_line(e)
    except Exception as e:  # noqa: BLE001 - no answer: refused, timed out, DNS, proxy, TLS
        return None, f"{type(e).__name__}: {first_line(e)}"


def _cached(repo_type: str, repo_id: str, revision: str, needs: Iterable[str]) -> Optional[Tuple[str, str, Path]]:
    """(id, commit, snapshot dir) of a cached snapshot holding `needs` (glob patterns), if any.

    The legacy id (before the hub moved models under organisations, e.g.
    `bert-base-multilingual-cased`) is looked up after the canonical one.
    """
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    for name in dict.fromkeys((repo_id, repo_id.rpartition("/")[2])):
        folder = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=name, repo_type=repo_type)
        ref = folder / "refs" / revision
        commit = revision if COMMIT.fullmatch(revision) else ref.read_text().strip() if ref.is_file() else None
        snapshot = folder / "snapshots" / str(commit)
        if commit and snapshot.is_dir() and all(any(snapshot.glob(p)) for p in needs):
            return name, commit, snapshot
    return None


def pin_model(repo_id: str, revision: str) -> Pin:
    info, why = _ask("model", repo_id, revision, "model.path")
    if info is not None:
        return Pin(info.id or repo_id, info.sha)
    for weights in _WEIGHTS:
        found = _cached("model", repo_id, revision, ["config.json", weights])
        if found:
            return Pin(found[0], found[1], offline=True)
    raise ConfigError("model.path", f"{repo_id!r} ({revision}) is not in the Hugging Face cache and the hub "
                                    f"did not answer ({why}); {OFFLINE_MODEL}")


# -- datasets ------------------------------------------------------------------------------

def _readme_patterns(readme: Optional[str], config: str, split: str) -> List[str]:
    """The file patterns the dataset card's `configs:` gives for (config, split)."""
    import yaml

    if not readme or not readme.startswith("---"):
        return []
    card = yaml.safe_load(readme.split("---", 2)[1]) or {}
    for entry in card.get("configs") or []:
        if entry.get("config_name") != config:
            continue
        files = entry.get("data_files") or []
        if isinstance(files, dict):
            files = [{"split": s, "path": p} for s, p in files.items()]
        for item in files if isinstance(files, list) else []:
            if isinstance(item, dict) and item.get("split") == split:
                path = item.get("path")
                return list(path) if isinstance(path, list) else [path]
    return []


def _match(listing: List[str], readme: Optional[str], lang: str, split: str, layout: str) -> List[str]:
    # Where a card names nothing, the task's own layout (task.hub_files), e.g. <lang>/<split>-*
    patterns = _readme_patterns(readme, lang, split) or [layout.format(lang=lang, split=split)]
    return sorted(f for f in listing if any(fnmatch.fnmatch(f, p) for p in patterns))


def _listing(folder: Path) -> List[str]:
    return [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]


def _read(path: Path) -> Optional[str]:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _files(listing: List[str], readme: Optional[str], needs: Iterable[Tuple[str, str]], layout: str,
           missing: str) -> Dict[str, List[str]]:
    files = {}
    for lang, split in sorted(set(needs)):
        files[f"{lang}/{split}"] = _match(listing, readme, lang, split, layout)
        if not files[f"{lang}/{split}"]:
            raise ConfigError("data.hub_id", missing.format(lang=lang, split=split))
    return files


def pin_dataset(repo_id: str, revision: str, needs: Iterable[Tuple[str, str]], layout: str) -> Pin:
    """Pin a dataset with the files of each (language, split) in `needs`; `layout`: the task's
    file pattern where the repo's card names no files."""
    needs = list(needs)
    local = Path(repo_id).expanduser()
    if local.is_dir():  # a copy of the repo: no hub, no commit; its files' content stands in
        files = _files(_listing(local), _read(local / "README.md"), needs, layout,
                       f"{local} has no {{split}} files for language {{lang!r}}")
        paths = [local / f for fs in files.values() for f in fs]
        return Pin(str(local.resolve()), content_hash(paths), files=files)
    info, why = _ask("dataset", repo_id, revision, "data.hub_id")
    if info is not None:
        from huggingface_hub import hf_hub_download

        listing = [s.rfilename for s in info.siblings or []]
        readme = None
        if "README.md" in listing:
            readme = Path(hf_hub_download(info.id, "README.md", repo_type="dataset", revision=info.sha)).read_text()
        files = _files(listing, readme, needs, layout, f"{repo_id!r} has no {{split}} files for language {{lang!r}}")
        return Pin(info.id or repo_id, info.sha, files=files)
    found = _cached("dataset", repo_id, revision, [])
    if found is None:
        raise ConfigError("data.hub_id", f"{repo_id!r} ({revision}) is not in the Hugging Face cache and the hub "
                                         f"did not answer ({why}); {OFFLINE_DATA}")
    name, commit, snapshot = found
    files = _files(_listing(snapshot), _read(snapshot / "README.md"), needs, layout,
                   f"{repo_id!r}: the {{split}} split of {{lang!r}} is not cached and the hub did not answer "
                   f"({why}); {OFFLINE_DATA}")
    return Pin(name, commit, offline=True, files=files)


# -- one resolution per sweep, shared with every job --------------------------------------

def pin_all(models: Iterable[Tuple[str, str]], datasets: Dict[Tuple[str, str, str], set]) -> Dict[str, Pin]:
    """Pin every (model id, revision) and (dataset id, revision, layout) -> needed (lang, split)s,
    then hand the pins to the job processes (`share_with_jobs`)."""
    pins = {_key("model", repo, rev): pin_model(repo, rev) for repo, rev in dict.fromkeys(models)}
    for (repo, rev, layout), needs in datasets.items():
        pins[_key("dataset", repo, rev)] = pin_dataset(repo, rev, needs, layout)
    if pins:
        share_with_jobs(pins)
    return pins


def share_with_jobs(pins: Dict[str, Pin]) -> None:
    """Put the pins into this process's environment, which every job process inherits."""
    os.environ[PINS_ENV] = json.dumps({key: asdict(pin) for key, pin in pins.items()})
    offline = {key: pin for key, pin in pins.items() if pin.offline}
    if offline:
        go_offline()
        listed = ", ".join(f"{pin.repo_id}@{pin.commit[:10]}" for pin in offline.values())
        print(f"xlt: note: the Hugging Face Hub did not answer; jobs run offline from the cache: {listed}",
              file=sys.stderr, flush=True)


def go_offline() -> None:
    """No hub requests from here on, in this process and the jobs it starts."""
    os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"
    from huggingface_hub import constants

    constants.HF_HUB_OFFLINE = True  # read at import; this process imported it already


def _pin(repo_type: str, repo_id: str, revision: str, resolve) -> Pin:
    """The sweep's pin, or a fresh resolution when this job was started some other way."""
    exported = json.loads(os.environ.get(PINS_ENV) or "{}").get(_key(repo_type, repo_id, revision))
    if exported is not None:
        return Pin(**exported)
    pin = resolve()
    if pin.offline:
        go_offline()
    return pin


def model_source(cfg: ModelConfig, cache_dir: Optional[Path] = None) -> ModelSource:
    """Resolve a job's `model` config to the weights it loads."""
    if cfg.source == "tiny":  # random weights: the shape (and the seed, see features) is the identity
        return ModelSource(None, None, json.dumps(asdict(cfg.tiny), sort_keys=True))
    if cfg.source == "local":
        path = Path(cfg.path).expanduser().resolve()
        return ModelSource(str(path), None, content_hash(model_files(path), cache_dir))
    pin = _pin("model", cfg.path, cfg.revision, lambda: pin_model(cfg.path, cfg.revision))
    return ModelSource(pin.repo_id, pin.commit, f"{pin.repo_id}@{pin.commit}")


def _names(task: TaskConfig, lang: str) -> Dict[str, str]:
    return {"lang": lang, "language": task.language_names.get(lang, lang)}


def _sliced(template: str) -> Tuple[str, str]:
    """A `task.hub_splits` entry as (config/split, slice): `tydiqa/train[-10%:]` -> (`tydiqa/train`, `[-10%:]`)."""
    at = template.find("[")
    return (template, "") if at < 0 else (template[:at], template[at:])


def hub_part(task: TaskConfig, lang: str, split: str) -> Tuple[str, str]:
    """A language's split as the task's hub repo names it, (config, split): the language's config
    (`PAN-X.de`, `udpos.German`) and the split itself, unless `task.hub_splits` names both."""
    if split in task.hub_splits:
        config, _, repo_split = _sliced(task.hub_splits[split])[0].format(**_names(task, lang)).rpartition("/")
        return config, repo_split
    return task.hub_config.format(**_names(task, lang)), split


def hub_rows(task: TaskConfig, lang: str, split: str) -> Tuple[str, str]:
    """Which rows of its hub part are a (language, split)'s, as (id prefix, slice): TyDiQA's
    `arabic-` of a file holding every language (`task.hub_row_prefix`), and a slice in datasets'
    split syntax (`[-10%:]`, validation rows held out of the training split); empty: all of them."""
    return task.hub_row_prefix.format(**_names(task, lang)), _sliced(task.hub_splits.get(split, ""))[1]


def _check_slices(task: TaskConfig) -> None:
    """A slice in `task.hub_splits` is one datasets reads (`[:-10%]`, `[100:]`), known before any job."""
    from datasets import ReadInstruction

    for split, template in task.hub_splits.items():
        span = _sliced(template)[1]
        if span:
            try:
                ReadInstruction.from_spec("rows" + span)
            except (ValueError, AssertionError):
                raise ConfigError("task.hub_splits", f"{split}: {template!r} ends in no slice datasets reads; write "
                                                     "e.g. tydiqa/train[-10%:] or tydiqa/train[:500]") from None


def _per_language(task: TaskConfig, template: str) -> bool:
    """Whether a hub part's rows are per language: a config named by language, or rows told apart by id."""
    return "{lang" in template or "{language" in template or bool(task.hub_row_prefix)


def hub_reads(cfg) -> List[Tuple[str, str]]:
    """The (hub config, split) pairs a job reads: its protocol's (language, split) pairs, in the repo's
    names. A split that `task.hub_splits` maps to one language's rows (SQuAD's English training
    set) is read for the training language only: one line where a protocol asks it of another."""
    reads = splits_read(cfg)
    _check_slices(cfg.task)
    for lang, split in reads:
        template = cfg.task.hub_splits.get(split, "{lang}")
        if not _per_language(cfg.task, template) and lang != cfg.data.train_language:
            raise ConfigError("protocol", f"task={cfg.task.name}'s hub repo has {split} rows in "
                                          f"{cfg.data.train_language} only ({template}), and protocol "
                                          f"{cfg.protocol.name} reads {lang} {split} rows; use data=jsonl "
                                          f"data.dir=DIR with {split}.{lang}.jsonl")
    return list(dict.fromkeys(hub_part(cfg.task, lang, split) for lang, split in reads))


def dataset_pin(cfg: DataConfig, layout: str, needs: Iterable[Tuple[str, str]]) -> Pin:
    """The pin of a job's hub dataset; `layout`: the task's `hub_files`."""
    return _pin("dataset", cfg.hub_id, cfg.revision, lambda: pin_dataset(cfg.hub_id, cfg.revision, needs, layout))


def dataset_paths(pin: Pin, lang: str, split: str) -> List[Path]:
    """Local paths of one (language, split), downloaded first if need be."""
    files = pin.files.get(f"{lang}/{split}")
    if files is None:
        raise ConfigError("data.hub_id", f"{lang} {split} was not pinned for this sweep")
    if Path(pin.repo_id).is_dir():
        return [Path(pin.repo_id) / f for f in files]
    from huggingface_hub import hf_hub_download

    return [Path(hf_hub_download(pin.repo_id, f, repo_type="dataset", revision=pin.commit)) for f in files]
