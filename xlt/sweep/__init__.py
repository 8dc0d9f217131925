"""The sweep layer: xlt's Hydra plugins and what a sweep does beside running its jobs.

- `plugins`: the launcher's and sweepers' configs, registered by the plugin package
  (hydra_plugins/xlt_sweep) so that any Hydra app finds `hydra/launcher=xlt`;
- `grid`: the jobs of a command line, as Hydra's basic sweeper expands them;
- `launcher`: a process per job, a GPU per job, a dead job ending only itself;
- `sweeper` (grid) and `search` (Optuna): skip finished jobs, survive failed ones;
- `settle`: the MLflow store's word on jobs a launcher lost or that died;
- `outcome`, `summary`, `end`: what became of each job, and the end of every sweep
  (summary table, report, Aim sync, exit status).
"""
