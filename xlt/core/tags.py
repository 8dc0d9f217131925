"""MLflow tag names xlt writes and reads: one place, so writers and readers agree."""

HASH = "xlt.config_hash"  # what a job computes (xlt.config.config_hash): reruns match on it
JOB_DIR = "xlt.job_dir"
JOB_NUM = "xlt.job_num"
SWEEP = "xlt.sweep_id"  # the sweep directory's name
KIND = "xlt.kind"  # "sweep" on a sweep's parent run, which holds the report and no job
CHECKPOINT = "xlt.checkpoint"  # on a KILLED run: where its job resumes from
ALARMS = "xlt.alarms"  # on a run whose numbers look broken (xlt.train.alarms), `; ` between them
ERROR = "xlt.error"  # on a FAILED or KILLED run: why, in one line
HEARTBEAT = "xlt.heartbeat"  # a live run's last beat, its writer's unix time (xlt.tracking.heartbeat)
HEARTBEAT_S = "xlt.heartbeat_s"  # seconds between its beats
HEARTBEAT_HOST = "xlt.heartbeat_host"  # the host whose clock wrote the beats: only its own readers compare clocks
MODEL = "xlt.model"
METRIC = "xlt.metric"  # the metric that selects a run's weights and headlines its score (its task's: xlt.tasks)
TECHNIQUE = "xlt.technique"
GIT_COMMIT = "xlt.git_commit"
GIT_DIRTY = "xlt.git_dirty"
REPRODUCED_FROM = "xlt.reproduced_from"  # set by `xlt reproduce`
DEVICE = "xlt.device"
# What else ran while the job did, for the report's timing findings (xlt.report.findings):
HOST = "xlt.host"
CPUS = "xlt.cpus"
PARALLEL_JOBS = "xlt.parallel_jobs"  # jobs the launcher ran at a time
LOAD = "xlt.load"  # the machine's 1-minute load average, the higher of the job's start and end of training
CUDA_VISIBLE_DEVICES = "xlt.cuda_visible_devices"
PARENT = "mlflow.parentRunId"  # MLflow's own: the UI nests a sweep's runs under its parent
