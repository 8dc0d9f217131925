import os
import sys
from pathlib import Path

import pytest

# Tests never touch the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest_plugins = ["tasks.token_data"]  # the token-task data and runs a session shares (tests/tasks)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("XLT_SHARED", REPO.parent / "shared"))
E5 = SHARED / "models" / "multilingual-e5-small-xnli"
XNLI = SHARED / "data" / "xnli"
HOOKS = REPO / "tests" / "hooks"  # fault injection, loaded only by the commands of tests that ask

needs_shared = pytest.mark.skipif(not (E5 / "config.json").is_file() or not XNLI.is_dir(),
                                  reason=f"real encoder and XNLI data not found under {SHARED}")


LABELS = ["entailment", "neutral", "contradiction"]  # XNLI's, in label-id order
def saved_encoder(tmp_path, kind):
    """A tiny checkpoint saved from the class its hub repo was saved from (tests/standins.py), loaded
    as xlt loads a local model: (classifier, names of the newly initialised parameters)."""
    from standins import tiny_checkpoint

    return load_local(tiny_checkpoint(tmp_path / kind, kind))


def load_local(path):
    from xlt.config import ModelConfig
    from xlt.data.hub import model_source
    from xlt.model.loading import load_model

    cfg = ModelConfig(name=path.name, source="local", path=str(path))
    return load_model(cfg, model_source(cfg), None, LABELS)


def run_xlt(*args: str, cwd: Path = REPO, timeout: int = 600, fault: str = "", command=None, env=None):
    """`python run.py ARGS` in a subprocess, as a user would run it.

    `fault` sets XLT_FAULT (tests/hooks/xlt_faults.py), and puts tests/hooks on PYTHONPATH so that
    every process of the command loads the fault hooks; `command` replaces `python run.py`.
    """
    import subprocess

    command = command or [sys.executable, str(REPO / "run.py")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "XLT_FAULT": fault, **(env or {})}
    if fault:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HOOKS), env.get("PYTHONPATH")]))
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def metric_histories(client, run, skip=("runtime", "per_second")):
    """Every metric of a run as {name: [(step, value), ...]}, wall-clock ones left out."""
    return {name: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, name)]
            for name in run.data.metrics if not name.endswith(skip)}


def mlflow_runs(output_dir: Path, experiment: str, parents: bool = False):
    """The experiment's job runs; with `parents`, the sweeps' parent runs (holding reports) too."""
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{output_dir / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id]) if exp else []
    return client, [r for r in runs if parents or r.data.tags.get("xlt.kind") != "sweep"]


def aim_jobs(repo_dir: Path) -> list:
    """The Aim runs of an xlt sync that hold jobs (a sweep's parent run, `xlt.kind: sweep`, left out)."""
    from aim import Repo

    return [run for run in Repo(str(repo_dir)).iter_runs() if run["tags"].get("xlt.kind") != "sweep"]


def assert_findings_heed_alarms(markdown: str, runs) -> str:
    """A report's findings rank only runs without alarms: they say how many were left out, or that
    there is no finding when every run has one. Returns the findings section."""
    findings = markdown.split("## Findings")[1].split("\n## ")[0]
    finished = [r for r in runs if r.info.status == "FINISHED"]
    alarmed = [r for r in finished if r.data.tags.get("xlt.alarms")]
    if len(alarmed) == len(finished):
        assert f"No finding: every finished run ({len(finished)}) carries an alarm" in findings, findings
    elif alarmed:
        assert f"{len(alarmed)} of {len(finished)} finished runs are left out of these findings" in findings, findings
    return findings
