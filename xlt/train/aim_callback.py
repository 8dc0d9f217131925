"""`tracking.aim.callback=true`: Aim's own Trainer callback (as in the seed), logging straight
into `<output_dir>/aim_callback`, with xlt's names: the language goes into the Aim context."""
from __future__ import annotations

from aim.hugging_face import AimCallback

from xlt.config import XltConfig, job_fields
from xlt.core.metrics import from_trainer_logs
from xlt.tracking.aim_writer import aim_name, index_runs


class XltAimCallback(AimCallback):
    def setup(self, args=None, state=None, model=None):
        # xlt's cached-feature and pooling wrappers hold the Hugging Face model as `.model`.
        super().setup(args, state, getattr(model, "model", model))

    def on_log(self, args, state, control, model=None, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if not self._run:
            self.setup(args, state, model)
        # Aim's own parsing makes `de_accuracy` a name; xlt's makes it `accuracy` + {lang: de}.
        for key, value in from_trainer_logs(logs).items():
            name, context = aim_name(key)
            self._run.track(value, name=name, context=context, step=state.global_step, epoch=state.epoch)

    def close(self):
        run = self._run
        super().close()
        if run is not None:
            index_runs(run.repo, [run.hash])


def aim_callback(cfg: XltConfig) -> XltAimCallback:
    # Package versions are in the MLflow run's environment snapshot; Aim's own listing
    # (log_system_params) needs pkg_resources, gone from recent setuptools.
    callback = XltAimCallback(repo=str(cfg.aim_callback_repo), experiment=cfg.tracking.experiment,
                              capture_terminal_logs=False, log_system_params=False)
    callback.experiment["xlt"] = job_fields(cfg)  # group by run.xlt.model.name, ...
    return callback
