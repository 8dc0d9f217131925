"""A sweep against `mlflow server` on PostgreSQL: parallel jobs on a fresh experiment, and the
same runs, statuses, metric points and Aim sync as the same sweep on the default SQLite store."""
import pytest

from commands import run_xlt
from standins.postgres import MlflowServer, PostgresServer, postgres_bin

SWEEP = ["-m", "experiment=smoke", "hydra.sweeper.params.technique=feature_extraction", "train.seed=1,2,3",
         "train.epochs=1", "hydra.launcher.n_jobs=3"]


@pytest.fixture
def server(tmp_path):
    if postgres_bin() is None:
        pytest.skip("PostgreSQL not installed: apt-get update && apt-get install postgresql")
    pytest.importorskip("psycopg", reason="pip install -e '.[postgres]'")
    postgres = PostgresServer()
    try:
        (tmp_path / "artifacts").mkdir()
        mlflow_server = MlflowServer(postgres.uri, tmp_path / "artifacts")
        yield mlflow_server
        mlflow_server.stop()
    finally:
        postgres.stop()


def store_contents(uri: str, experiment: str):
    """{job number: (status, {metric: points})} of an experiment's job runs."""
    import mlflow

    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return {int(r.data.tags["xlt.job_num"]): (r.info.status, {
        name: len(client.get_metric_history(r.info.run_id, name)) for name in r.data.metrics})
        for r in runs if r.data.tags.get("xlt.kind") != "sweep"}


def aim_points(repo) -> dict:
    """{(job number, MLflow status, metric, context): points} in an Aim repo."""
    from aim import Repo

    out = {}
    for run in Repo(str(repo)).iter_runs():
        for metric in run.metrics():
            tags = run["tags"]
            key = (tags.get("xlt.job_num", tags.get("xlt.kind")), run["mlflow"]["status"], metric.name,
                   str(sorted(metric.context.to_dict().items())))
            out[key] = len(metric.values.sparse_numpy()[0])
    return out


@pytest.mark.heavy
@pytest.mark.slow
def test_a_sweep_on_an_mlflow_server_over_postgresql_matches_sqlite(tmp_path, server):
    on_server = run_xlt(*SWEEP, f"output_dir={tmp_path / 'server'}", f"tracking.uri={server.uri}", fault="raise:2")
    on_sqlite = run_xlt(*SWEEP, f"output_dir={tmp_path / 'sqlite'}", fault="raise:2")
    assert on_server.returncode == on_sqlite.returncode == 1, on_server.stderr[-3000:]

    # Three jobs created the fresh experiment at once: one experiment, every run in it.
    served = store_contents(server.uri, "smoke")
    local = store_contents(f"sqlite:///{tmp_path / 'sqlite' / 'mlflow.db'}", "smoke")
    assert sorted(served) == [0, 1, 2] and [served[n][0] for n in (0, 1, 2)] == ["FINISHED", "FINISHED", "FAILED"]
    assert served == local

    # The end-of-sweep Aim sync read the server: the same series and points as from SQLite.
    assert aim_points(tmp_path / "server" / "aim") == aim_points(tmp_path / "sqlite" / "aim")
    assert len(aim_points(tmp_path / "server" / "aim")) > 20
