"""Hydra's plugin contracts, tried with Hydra's own test suites: xlt's launcher on Hydra's test
app (no xlt code but the plugin package: `hydra/launcher=xlt` registers itself), and xlt's
sweeper's batches and JobReturns on xlt's own configs."""
import os
import sys

import pytest
from hydra.core.utils import JobStatus
from hydra.test_utils.launcher_common_tests import IntegrationTestSuite, LauncherTestSuite

from conftest import REPO


@pytest.fixture(autouse=True)
def hydras_own_defaults(hydra_restore_singletons):
    """Hydra's suites assume Hydra's defaults (no version_base); tests before them set "1.3" process-wide
    (Hydra's Compose API does). Restored after each test."""
    from hydra.version import _UNSPECIFIED_, VersionBase

    VersionBase.instance().version_base = _UNSPECIFIED_


@pytest.mark.slow
@pytest.mark.parametrize("launcher_name, overrides", [("xlt", [])])
class TestXltLauncher(LauncherTestSuite):
    """Hydra's launcher suite: jobs' configs, Hydra configs, directories, job ids and numbers."""


@pytest.mark.heavy  # a process per case: in CI's second run
@pytest.mark.slow
@pytest.mark.parametrize("task_launcher_cfg, extra_flags",
                         [({"defaults": [{"override hydra/launcher": "xlt"}, "_self_"]}, ["-m"])])
class TestXltLauncherIntegration(IntegrationTestSuite):
    """Hydra's integration suite: apps of their own scripts, task names, working dirs, orig dirs."""


def hydra_app_sweep(hydra_sweep_runner, tmp_path, task, overrides):
    return hydra_sweep_runner(calling_file=None, calling_module="hydra.test_utils.a_module", task_function=task,
                              config_path="configs", config_name="compose.yaml",
                              overrides=["hydra/launcher=xlt", *overrides], temp_dir=tmp_path)


def fail_on_two(cfg):
    if cfg.a == 2:
        raise ValueError("two is not allowed")
    return {"a": cfg.a}


@pytest.mark.slow
@pytest.mark.usefixtures("hydra_restore_singletons")
def test_the_launcher_returns_what_the_task_returned_and_its_own_error(hydra_sweep_runner, tmp_path):
    with hydra_app_sweep(hydra_sweep_runner, tmp_path / "ok", fail_on_two, ["+a=1"]) as sweep:
        (ok,) = sweep.returns[0]
    assert ok.status == JobStatus.COMPLETED and ok.return_value == {"a": 1} and ok.task_name == "a_module"
    assert ok.working_dir and ok.hydra_cfg.hydra.job.num == 0 and ok.cfg.a == 1
    # Hydra's basic sweeper re-raises a failed job's error from its JobReturn: the job's own.
    with pytest.raises(ValueError, match="two is not allowed"):
        with hydra_app_sweep(hydra_sweep_runner, tmp_path / "failed", fail_on_two, ["+a=1,2"]):
            pass


def constant_score(cfg):
    return {"run_id": None, "target_accuracy": 0.5}


@pytest.mark.slow
@pytest.mark.usefixtures("hydra_restore_singletons")
def test_the_sweeper_launches_in_batches_of_max_batch_size_on_xlt_configs(hydra_sweep_runner, tmp_path):
    """xlt's sweeper on xlt's own configs, as Hydra's BatchedSweeperTestSuite checks its sweepers."""
    from xlt.config import register_schema

    register_schema()
    overrides = ["experiment=smoke", "technique=fine_tune", "train.seed=1,2,3", "hydra.sweeper.max_batch_size=2",
                 f"output_dir={tmp_path / 'out'}"]
    sweep = hydra_sweep_runner(calling_file=str(REPO / "run.py"), calling_module=None, task_function=constant_score,
                               config_path="conf", config_name="config", overrides=overrides,
                               temp_dir=tmp_path / "sweep")
    with sweep:  # Hydra's runner deletes the sweep directory on leaving
        returns = sweep.returns
        summary = (tmp_path / "sweep" / "summary.md").read_text()
    assert [len(batch) for batch in returns] == [2, 1]
    flat = [ret for batch in returns for ret in batch]
    assert [[o for o in ret.overrides if o.startswith("train.seed=")] for ret in flat] == [
        ["train.seed=1"], ["train.seed=2"], ["train.seed=3"]]
    assert [ret.cfg.train.seed for ret in flat] == [1, 2, 3]
    assert [ret.hydra_cfg.hydra.job.num for ret in flat] == [0, 1, 2]
    assert len({ret.hydra_cfg.hydra.runtime.output_dir for ret in flat}) == 3  # a directory per job
    assert all(ret.return_value == {"run_id": None, "target_accuracy": 0.5} for ret in flat)
    assert "| #2  |" in summary  # xlt's summary, beside Hydra's returns


PLAIN_APP = ("import hydra\n\n@hydra.main(config_path=None, version_base='1.3')\n"
             "def main(cfg):\n    print('job', cfg.a)\n\nif __name__ == '__main__':\n    main()\n")


def run_app(tmp_path, script: str, *overrides: str, env=None):
    """`python app.py -m OVERRIDES`: a Hydra app of its own script, no xlt import in it."""
    import subprocess

    (tmp_path / "app.py").write_text(script)
    return subprocess.run([sys.executable, "app.py", "-m", *overrides, f"hydra.sweep.dir={tmp_path / 'multirun'}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


def test_the_plugin_package_registers_its_configs_for_any_hydra_app(tmp_path):
    """No `register_schema()` and no xlt import in the app: Hydra's plugin scan finds xlt's launcher."""
    result = run_app(tmp_path, PLAIN_APP, "hydra/launcher=xlt", "+a=7")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "job 7" in result.stdout + result.stderr and "Launching 1 jobs" in result.stdout + result.stderr


OWN_ERROR_APP = '''
import os
import sys

import hydra


class OwnError(Exception):
    """Defined in the app's own script."""


@hydra.main(version_base=None, config_path=None)
def app(cfg):
    if cfg.x == 2:
        raise OwnError(f"job {cfg.x} failed")


if __name__ == "__main__":
    try:
        app()
    except OwnError as e:  # HYDRA_FULL_ERROR=1: Hydra re-raises the job's own exception
        print(f"caught {type(e).__module__}.{type(e).__qualname__} {e}", isinstance(e, OwnError))
        sys.exit(3)
'''


@pytest.mark.parametrize("launcher", ["basic", "xlt"])
def test_a_jobs_own_exception_class_comes_back_as_the_basic_launcher_gives_it(tmp_path, launcher):
    """Its class defined in the app's script (`__main__`): the sweep's process catches its own class."""
    result = run_app(tmp_path, OWN_ERROR_APP, f"hydra/launcher={launcher}", "+x=1,2", env={"HYDRA_FULL_ERROR": "1"})
    assert result.returncode == 3, result.stderr[-2000:]
    assert "caught __main__.OwnError job 2 failed True" in result.stdout


def test_xlts_sweeper_on_another_apps_config_is_one_line(tmp_path):
    result = run_app(tmp_path, PLAIN_APP, "hydra/sweeper=xlt", "+a=1,2")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[0] == (
        "hydra/sweeper=xlt sweeps xlt's jobs (python run.py -m ...), and this app's config has no task, technique, "
        "protocol, train; use hydra/sweeper=basic for another app (hydra/launcher=xlt runs any app's jobs)")
