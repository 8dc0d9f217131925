"""What a person reads on the console, in a terminal or in a SLURM log file.

`conf/hydra/job_logging/xlt.yaml` sends every job's log records to the job's `run.log` in
full, and to the console through `ConsoleHandler`: short lines tagged with the job number
(`#3`) so that jobs running side by side stay apart. On a terminal a progress bar shows
training (xlt/train/progress.py), so the per-step lines stay in the file; elsewhere they are the
progress. `quiet_third_party` silences library chatter unless `hydra.verbose` asks for it.
"""
from __future__ import annotations

import logging
import os
import sys
import warnings

STEP_LINE = "xlt_step_line"  # a record attribute: a per-step line a progress bar replaces


def job_tag() -> str:
    """'#3 ' in job 3 of a sweep, '' in a single run or outside Hydra."""
    try:
        from hydra.core.hydra_config import HydraConfig

        num = HydraConfig.get().job.get("num")
    except ValueError:  # Hydra is not running
        return ""
    return "" if num is None else f"#{num} "


def on_terminal(stream=None) -> bool:
    return bool(getattr(stream or sys.stdout, "isatty", lambda: False)())


class ConsoleHandler(logging.StreamHandler):
    """`HH:MM:SS #N message` lines; through tqdm on a terminal, so that bars stay whole."""

    def __init__(self, stream=None):
        super().__init__(stream or sys.stdout)
        self.terminal, self.tag = on_terminal(self.stream), job_tag()
        self.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        if self.terminal and getattr(record, STEP_LINE, False):
            return  # the bar shows it
        try:
            prefix = self.tag + (f"{record.levelname}: " if record.levelno >= logging.WARNING else "")
            line = self.format(logging.makeLogRecord({**record.__dict__, "msg": prefix + record.getMessage(),
                                                      "args": None}))
            if self.terminal:
                from tqdm import tqdm

                # Clear the line first: a job running beside this one may have its bar there.
                tqdm.write("\r\x1b[K" + line, file=self.stream)
            else:
                self.stream.write(line + "\n")
            self.flush()
        except Exception:  # noqa: BLE001 - logging's own contract: a handler never raises
            self.handleError(record)


def verbose() -> bool:
    """`hydra.verbose` is set (true, or a list of loggers): show every library's logs."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return bool(HydraConfig.get().verbose)
    except ValueError:
        return False


def quiet_third_party() -> None:
    """Silence the libraries' INFO chatter, progress bars and deprecation notices; keep their
    warnings that matter (anything at WARNING from xlt, torch or Python itself)."""
    # Where Ray runs the jobs, every line of theirs, flushed as it comes (Ray would merge
    # lines that look alike across jobs), and no colour codes in a log file.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_FLUSH_DRIVER_LOGS", "1")
    if not on_terminal():
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    if verbose():
        return
    # The libraries read these when imported; those already imported are told directly below.
    for key, value in {"MLFLOW_LOGGING_LEVEL": "WARNING", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
                       "TRANSFORMERS_VERBOSITY": "error", "DATASETS_VERBOSITY": "error",
                       "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}.items():
        os.environ.setdefault(key, value)
    for name in ("mlflow", "alembic", "aim", "urllib3", "filelock", "matplotlib", "optuna"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if "huggingface_hub" in sys.modules:  # transformers reads its switch when imported
        sys.modules["huggingface_hub"].utils.disable_progress_bars()
    if "transformers" in sys.modules:  # its LOAD REPORT lists the head weights every classifier lacks
        sys.modules["transformers"].logging.set_verbosity_error()
        sys.modules["transformers"].logging.disable_progress_bar()
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()
        sys.modules["datasets"].logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(pyarrow|datasets|transformers)\b")
