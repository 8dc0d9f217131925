"""A real SIGTERM in each phase of a job, and SIGKILL of its sweep (issue 39): the same command again
trains no step that was trained before the stop, and ends with the numbers of a run never stopped.
Real processes of the tiny model; the signal is sent by the job itself as it enters the phase
(tests/hooks/xlt_faults.py: `sigterm-in`, `sigkill-sweep-in`). In-process stops of the phases after
training: tests/train/test_stops_after_training.py; SIGTERM and SIGKILL in training: test_faults.py,
test_killed_sweeps.py."""
import pytest

from xlt.core import tags

from commands import run_xlt
from stores import metric_histories, mlflow_runs, runs_once_ended

JOB = ["experiment=smoke", "train.epochs=1", "languages.eval=[en,de]", "train.save=selected",
       "tracking.aim.sync=false"]
FINE_TUNE, FEATURES = ["technique=fine_tune"], ["technique=feature_extraction"]
WALL_CLOCK = ("runtime", "per_second", "seconds")


def _finished(tmp_path, experiment="smoke"):
    client, runs = mlflow_runs(tmp_path, experiment)
    (run,) = [r for r in runs if r.info.status == "FINISHED"]
    return client, run


def _numbers(client, run):
    """Every metric's history, and its last value, wall-clock ones left out."""
    histories = metric_histories(client, run, skip=WALL_CLOCK)
    return histories, {name: values[-1][1] for name, values in histories.items()}


@pytest.fixture(scope="module")
def never_stopped(tmp_path_factory):
    """The uninterrupted runs each stopped one is held to, per technique."""
    numbers = {}
    for technique in (FINE_TUNE, FEATURES):
        out = tmp_path_factory.mktemp("whole")
        result = run_xlt(*JOB, *technique, f"output_dir={out}")
        assert result.returncode == 0, result.stderr[-3000:]
        numbers[technique[0]] = _numbers(*_finished(out))
    return numbers


def _stop_then_rerun(tmp_path, technique, phase):
    """The job stopped by SIGTERM as it enters `phase`: its run, then the rerun's output and run."""
    stopped = run_xlt(*JOB, *technique, f"output_dir={tmp_path}", fault=f"sigterm-in:*:{phase}")
    assert stopped.returncode == 130, (phase, stopped.stderr[-3000:])
    assert "Traceback" not in stopped.stderr, phase
    client, (killed,) = mlflow_runs(tmp_path, "smoke")
    assert killed.info.status == "KILLED", phase
    trained = metric_histories(client, killed).get("train/loss", [])
    rerun = run_xlt(*JOB, *technique, f"output_dir={tmp_path}")
    assert rerun.returncode == 0, (phase, rerun.stderr[-3000:])
    return killed, trained, rerun.stdout + rerun.stderr, _finished(tmp_path)


@pytest.mark.heavy
@pytest.mark.parametrize("phase", ["testing", "saving", "logging"])
def test_sigterm_after_training_resumes_at_testing_and_trains_no_step_again(tmp_path, never_stopped, phase):
    killed, trained, said, (client, run) = _stop_then_rerun(tmp_path, FINE_TUNE, phase)
    assert killed.data.tags[tags.CHECKPOINT] and trained, phase
    assert f"resuming run {killed.info.run_id} at testing" in said, phase
    histories, last = _numbers(client, run)
    assert run.info.run_id == killed.info.run_id and histories["train/loss"] == trained  # no step again
    whole_histories, whole_last = never_stopped["technique=fine_tune"]
    assert histories["train/loss"] == whole_histories["train/loss"] and last == whole_last, phase


@pytest.mark.heavy
def test_sigterm_in_validation_resumes_from_the_next_step_exactly(tmp_path, never_stopped):
    """Signalled during the evaluation at step 20 (train.eval_steps), the job stops with a checkpoint
    as its next step ends; the rerun trains from there, and every history is the uninterrupted run's."""
    killed, trained, said, (client, run) = _stop_then_rerun(tmp_path, FINE_TUNE, "validation")
    step = int(killed.data.tags[tags.CHECKPOINT].rsplit("-", 1)[1])
    assert step == 21 and max(s for s, _ in trained) <= step
    assert f"resuming run {killed.info.run_id} from {killed.data.tags[tags.CHECKPOINT]}" in said
    assert run.info.run_id == killed.info.run_id
    assert _numbers(client, run) == never_stopped["technique=fine_tune"]


@pytest.mark.heavy
def test_sigterm_while_features_are_encoded_ends_the_run_and_the_rerun_matches_a_whole_run(tmp_path, never_stopped):
    """No step has been trained: nothing to resume but the run; the rerun's numbers are a whole run's."""
    killed, trained, said, (client, run) = _stop_then_rerun(tmp_path, FEATURES, "features")
    assert trained == [] and tags.CHECKPOINT not in killed.data.tags
    assert _numbers(client, run) == never_stopped["technique=feature_extraction"]


@pytest.mark.heavy
@pytest.mark.parametrize("phase", ["features", "validation", "testing", "saving", "logging"])
def test_sigkill_of_the_sweep_in_each_phase_loses_nothing(tmp_path, never_stopped, phase):
    """xlt's launcher runs the job in a process of its own. It hears of its sweep's death through its
    heartbeat: still training, it stops with a checkpoint that the rerun resumes (test_killed_sweeps.py
    makes sure of that path with a longer job); this short job has mostly trained by then, and it
    finishes (testing, saving and logging are never cut short): the rerun skips it."""
    technique = FEATURES if phase == "features" else FINE_TUNE
    sweep = ["-m", *JOB, f"hydra.sweeper.params.technique={technique[0].split('=')[1]}", "tracking.heartbeat_s=0.5",
             f"output_dir={tmp_path}"]
    killed = run_xlt(*sweep, fault=f"sigkill-sweep-in:0:{phase}")
    assert killed.returncode == -9, killed.stderr[-3000:]
    client, (first,) = runs_once_ended(tmp_path, "smoke")
    trained = metric_histories(client, first).get("train/loss", [])
    again = run_xlt(*sweep)
    assert again.returncode == 0, again.stderr[-3000:]
    said = again.stdout + again.stderr
    if first.info.status == "FINISHED":
        assert f"run {first.info.run_id} already finished" in said
    else:
        assert first.info.status == "KILLED" and first.data.tags[tags.ERROR].startswith("its sweep's process died")
        assert f"resuming run {first.info.run_id} from {first.data.tags[tags.CHECKPOINT]}" in said
    client, run = _finished(tmp_path)
    histories, last = _numbers(client, run)
    assert run.info.run_id == first.info.run_id and histories["train/loss"][:len(trained)] == trained
    assert (histories, last) == never_stopped[technique[0]], phase
