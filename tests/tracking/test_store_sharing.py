"""One store, several output directories (issue 39): created once whoever comes first, artifacts
beside the store, never under the working directory; a reproduction goes into the store it was given."""
import multiprocessing as mp

import pytest

from commands import run_xlt, xlt_cli
from stores import mlflow_runs


def _open_store(uri: str, output_dir: str, queue) -> None:
    try:
        from xlt.config import XltConfig
        from xlt.tracking.experiment import experiment_id

        cfg = XltConfig(output_dir=output_dir)
        cfg.tracking.uri, cfg.tracking.experiment = uri, "shared"
        queue.put(experiment_id(cfg))
    except Exception as e:  # noqa: BLE001 - reported to the test
        queue.put(f"{type(e).__name__}: {e}")


@pytest.mark.heavy  # three processes racing to create a store: in CI's second run
def test_processes_with_their_own_output_dirs_create_one_store_once(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_open_store, args=(uri, str(tmp_path / f"out{i}"), queue)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    found = {queue.get(timeout=5) for _ in workers}
    assert len(found) == 1 and next(iter(found)).isdigit(), found
    import mlflow

    experiment = mlflow.MlflowClient(uri).get_experiment_by_name("shared")
    assert experiment.artifact_location == (tmp_path / "store" / "mlartifacts").as_uri()


@pytest.mark.heavy  # two jobs in their own processes: in CI's second run
@pytest.mark.slow
def test_a_reproduction_goes_into_the_given_store_and_says_the_data_changed(tmp_path):
    import shutil

    from xlt.config import SAMPLE_DIR

    data, store = tmp_path / "data", tmp_path / "store"
    shutil.copytree(SAMPLE_DIR, data)
    here = tmp_path / "elsewhere"
    here.mkdir()
    first = run_xlt("model=tiny", "data=jsonl", f"data.dir={data}", "languages.eval=[en,de]", "train.epochs=0.5",
                    f"tracking.uri=sqlite:///{store}/mlflow.db", f"output_dir={tmp_path / 'out'}", cwd=here)
    assert first.returncode == 0, first.stderr[-3000:]
    client, (run,) = mlflow_runs(store, "xlt")
    assert client.get_experiment(run.info.experiment_id).artifact_location.startswith((store / "mlartifacts").as_uri())
    with open(data / "test.de.jsonl", "a") as f:
        f.write('{"premise": "Neu.", "hypothesis": "Neu.", "label": 0}\n')
    again = xlt_cli("reproduce", run.info.run_id, "--mlflow-tracking-uri", f"sqlite:///{store}/mlflow.db", cwd=here)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "xlt: note: the data changed since the run (data.commit sha256:" in again.stderr
    _, runs = mlflow_runs(store, "xlt")
    assert len(runs) == 2 and sorted(p.name for p in here.iterdir()) == []  # nothing under the working directory
    reproduced = next(r for r in runs if r.info.run_id != run.info.run_id)
    assert reproduced.data.tags["xlt.reproduced_from"] == run.info.run_id
