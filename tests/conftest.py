import os
import sys
from pathlib import Path

import pytest

# Tests never touch the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("XLT_SHARED", REPO.parent / "shared"))
E5 = SHARED / "models" / "multilingual-e5-small-xnli"
XNLI = SHARED / "data" / "xnli"

needs_shared = pytest.mark.skipif(not (E5 / "config.json").is_file() or not XNLI.is_dir(),
                                  reason=f"real encoder and XNLI data not found under {SHARED}")


def run_xlt(*args: str, cwd: Path = REPO, timeout: int = 600):
    """`python run.py ARGS` in a subprocess, as a user would run it."""
    import subprocess

    return subprocess.run([sys.executable, str(REPO / "run.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def mlflow_runs(output_dir: Path, experiment: str):
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{output_dir / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    return client, (client.search_runs([exp.experiment_id]) if exp else [])
