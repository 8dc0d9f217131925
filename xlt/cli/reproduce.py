"""`xlt reproduce RUN_ID|JOB_DIR [OVERRIDES...]`: run a job again from its saved snapshot.

The snapshot is the job's composed config as Hydra saved it (`.hydra/config.yaml`, also an
MLflow artifact under `hydra/`), so the rerun does not depend on today's `conf/`. It runs as
`run.py --config-path SNAPSHOT --config-name config`, Hydra's own way, with the new run tagged
`xlt.reproduced_from` (passed through the environment, so the config stays the snapshot's).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Tuple

import yaml

from xlt.cli.app import RESULT_FILE_ENV
from xlt.core import tags
from xlt.core.errors import ConfigError
from xlt.core.secrets import MASK
from xlt.data.hub import COMMIT
from xlt.tracking.job_run import REPRODUCED_FROM_ENV, RUN_NAME_ENV, flatten

RUN_ID = re.compile(r"[0-9a-f]{32}")
RUN_PY = Path(__file__).resolve().parents[2] / "run.py"


def _from_run(run_id: str, tracking_uri: str, into: Path) -> Tuple[Path, str, Path]:
    from xlt.tracking.store import store_exists

    if not store_exists(tracking_uri):
        raise ConfigError("RUN_ID", f"no MLflow store at {tracking_uri}; pass the one holding {run_id} "
                                    "with --mlflow-tracking-uri")
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(tracking_uri)
    try:
        client.get_run(run_id)
    except MlflowException:
        raise ConfigError("RUN_ID", f"no run {run_id!r} in {tracking_uri}; pass the store with "
                                    "--mlflow-tracking-uri, or give the job's directory instead") from None
    names = {a.path for a in client.list_artifacts(run_id, "hydra")}
    if "hydra/config.yaml" not in names:
        raise ConfigError("RUN_ID", f"run {run_id} has no hydra/config.yaml snapshot to reproduce from")
    snapshot = Path(client.download_artifacts(run_id, "hydra", str(into)))
    environment = into / "config" / "environment.yaml"
    if "config/environment.yaml" in {a.path for a in client.list_artifacts(run_id, "config")}:
        environment = Path(client.download_artifacts(run_id, "config/environment.yaml", str(into)))
    return snapshot, run_id, environment


def _from_dir(job_dir: Path) -> Tuple[Path, str, Path]:
    snapshot = job_dir / ".hydra"
    if not (snapshot / "config.yaml").is_file():
        raise ConfigError("JOB_DIR", f"{str(job_dir)!r} has no .hydra/config.yaml; give a job's output directory")
    return snapshot, str(job_dir.resolve()), job_dir / "environment.yaml"


def _environment_notice(environment: Path) -> Optional[str]:
    """One line if the code or packages differ from the snapshot's: metrics may then differ."""
    if not environment.is_file():
        return None
    from xlt.tracking.environment import git_state, installed_versions

    saved = yaml.safe_load(environment.read_text())
    changed = []
    commit = git_state().get(tags.GIT_COMMIT)
    if commit and saved.get("git_commit") not in (commit, "unknown"):
        changed.append(f"git commit {saved['git_commit'][:10]} -> {commit[:10]}")
    for name, now in installed_versions().items():
        was = saved.get("packages", {}).get(name)
        if was and was != now:
            changed.append(f"{name} {was} -> {now}")
    return "xlt: note: not the snapshot's environment: " + "; ".join(changed) if changed else None


def _inputs_notice(snapshot: Path, environment: Path) -> List[str]:
    """A line for each local input (data files, a checkpoint) whose contents changed since the run:
    the reproduction reads them as they are now."""
    if not environment.is_file():
        return []
    from omegaconf import OmegaConf

    from xlt.data.identity import inputs_identity
    from xlt.protocols import validate_job

    loaded = yaml.safe_load(environment.read_text()).get("loaded") or {}
    try:
        now = inputs_identity(validate_job(OmegaConf.load(snapshot / "config.yaml")))
    except (ConfigError, OSError):  # the run itself will say what is wrong
        return []
    return [f"xlt: note: the {part} changed since the run ({part}.commit {str(loaded[part])[:19]}..., now "
            f"{digest[:19]}...): the reproduction reads it as it is now" for part, digest in now.items()
            if str(loaded.get(part, "")).startswith("sha256:") and loaded[part] != digest]


def _into_store(target: str, tracking_uri: str, overrides: List[str]) -> List[str]:
    """`tracking.uri=STORE`: a run's reproduction goes into the store the run came from, given with
    --mlflow-tracking-uri (the snapshot's own would be relative to today's working directory)."""
    given = any(o.lstrip("+~").startswith("tracking.uri=") for o in overrides)
    return [] if given or not RUN_ID.fullmatch(target) else [f"tracking.uri={tracking_uri}"]


def _pinned_revisions(environment: Path) -> List[str]:
    """`model.revision=COMMIT data.revision=COMMIT`: the hub commits the run loaded, not `main` today."""
    if not environment.is_file():
        return []
    loaded = yaml.safe_load(environment.read_text()).get("loaded") or {}
    commits = {part: str(what).rpartition("@")[2] for part, what in loaded.items() if what and "@" in str(what)}
    return [f"{part}.revision={commit}" for part, commit in commits.items() if COMMIT.fullmatch(commit)]


def _snapshot(target: str, tracking_uri: str, into: Path) -> Tuple[Path, str, Path]:
    """(snapshot directory, source, environment file) of a job directory or a run id."""
    path = Path(target).expanduser()
    if path.is_dir():
        return _from_dir(path)
    if os.sep in target or target.startswith((".", "~")) or path.exists():
        raise ConfigError("JOB_DIR", f"{target!r} is not a directory; give a job's output directory "
                                     "(it holds .hydra/), or an MLflow run id")
    if not RUN_ID.fullmatch(target):
        raise ConfigError("RUN_ID", f"{target!r} is not a full MLflow run id (32 hex characters, as in the "
                                    "sweep summary or the MLflow UI); or give a job's output directory")
    return _from_run(target, tracking_uri, into)


def _check_credentials(snapshot: Path, target: str, overrides: List[str]) -> None:
    """A run logged with a password in a URL or a token in a tag kept only `***`: the rerun needs the
    real value again, given as an override, or it would run (and hash) a different config."""
    given = {o.lstrip("+~").partition("=")[0] for o in overrides}
    for name, value in flatten(yaml.safe_load((snapshot / "config.yaml").read_text())).items():
        if MASK in value and name not in given:
            raise ConfigError(name, f"the snapshot holds it masked ({value}), as every credential is logged; "
                                    f"give it again: xlt reproduce {target} {name}=...")


def _reproduced_name(snapshot: Path, overrides: List[str]) -> Optional[str]:
    """The original run's name (from its config and overrides), marked, with any new overrides."""
    from omegaconf import OmegaConf

    from xlt.protocols import validate_job
    from xlt.tracking.job_run import run_name

    try:
        cfg = validate_job(OmegaConf.load(snapshot / "config.yaml"))
    except (ConfigError, OSError):  # the run itself will say what is wrong
        return None
    original = list(OmegaConf.load(snapshot / "overrides.yaml")) if (snapshot / "overrides.yaml").is_file() else []
    changed = run_name(cfg, overrides).partition(" ")[2]
    return f"{run_name(cfg, original)} (reproduced{' with ' + changed if changed else ''})"


def reproduce(target: str, overrides: List[str], tracking_uri: str) -> int:
    from xlt.config import CONF_DIR
    from xlt.core.console import quiet_third_party

    quiet_third_party()  # no download bars
    with tempfile.TemporaryDirectory(prefix="xlt-reproduce-") as tmp:
        snapshot, source, environment = _snapshot(target, tracking_uri, Path(tmp))
        _check_credentials(snapshot, target, overrides)
        for notice in [_environment_notice(environment), *_inputs_notice(snapshot, environment)]:
            if notice:
                print(notice, file=sys.stderr)
        run_dir = "${output_dir}/runs/${now:%Y-%m-%d_%H-%M-%S}_${xlt.unique:}_reproduce"
        command = [sys.executable, str(RUN_PY), "--config-path", str(snapshot.resolve()), "--config-name", "config",
                   f"hydra.run.dir={run_dir}", "hydra.job.chdir=false",
                   # xlt's log format: the snapshot holds the job's config, not xlt's Hydra settings
                   f"hydra.searchpath=[file://{CONF_DIR}]", "hydra/job_logging=xlt", "hydra/hydra_logging=xlt",
                   *_pinned_revisions(environment), *_into_store(target, tracking_uri, overrides), *overrides]
        result = Path(tmp) / "result.json"
        env = {**os.environ, REPRODUCED_FROM_ENV: source, RESULT_FILE_ENV: str(result)}
        name = _reproduced_name(snapshot, overrides)
        if name:
            env[RUN_NAME_ENV] = name
        code = subprocess.call(command, env=env)
        if result.is_file():
            print(f"xlt reproduce: run {json.loads(result.read_text())['run_id']} reproduces {source}", flush=True)
        return code
