"""Jobs run in-process, as lightning-hydra-template's tests do: a config composed from conf/ with
Hydra's own runtime fields, then `train_and_test` called directly (no interpreter, torch or Hydra
start-up per job). Tests where the process itself is the point use `conftest.run_xlt`."""
from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from xlt.cli.precheck import CONF_DIR
from xlt.config import register_schema


def composed_job(output_dir: Path, *overrides: str):
    """A single run's config as `python run.py OVERRIDES output_dir=...` composes it, with the
    HydraConfig a job reads (its directory, its overrides) set."""
    register_schema()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[*overrides, f"output_dir={output_dir}"], return_hydra_config=True)
    job_dir = Path(output_dir) / "runs" / f"job{len(list(Path(output_dir).glob('runs/*')))}"
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(job_dir)
        cfg.hydra.job.num = 0
    job_dir.mkdir(parents=True, exist_ok=True)  # Hydra makes it before the task runs
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def run_job(output_dir: Path, *overrides: str) -> dict:
    """One job, in this process: its result (run id, score, alarms)."""
    from xlt.train.job import train_and_test

    return train_and_test(composed_job(output_dir, *overrides))
