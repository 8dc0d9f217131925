"""The train layer: one job, from a validated config to a tested model (`job`).

Its parts are Trainer callbacks and helpers: the Trainer's setup (`trainer`), model selection
on validation rounds (`selection`), stops with a checkpoint (`interrupt`), progress lines
(`progress`), metrics into the job's MLflow run (`metrics_log`) and Aim's own callback
(`aim_callback`)."""
