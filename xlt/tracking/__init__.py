"""The tracking layer: where results are kept and read back.

- `job_run`: the MLflow run of one job (name, tags, params, snapshot; always ended);
- `store`: queries of the MLflow store (finished, resumable and dead runs; a sweep's runs);
- `heartbeat`: a live job's tag, so that a sweep can tell live jobs from dead ones;
- `environment`: code and package versions beside a run's config;
- `server`: does a tracking server answer;
- `sync` (with `mlflow_reader`, `aim_writer`, `sync_state`): MLflow runs into Aim.
"""
