"""What every test shares: no network, where the shared encoder and XNLI rows are, the session's shared
fixtures. Helpers by what they do: commands.py (a real process), jobs.py (a job in-process), stores.py
(what a store holds), standins/ (a hub, servers, checkpoints, dataset repos)."""
import os
from pathlib import Path

import pytest

# Tests never touch the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Parallel workers (pytest-xdist) share the cores: each worker, and the jobs it starts, gets its share of
# threads instead of every torch process taking them all (set before anything imports torch).
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    share = (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, share)))

pytest_plugins = ["tasks.token_data", "tasks.qa_data"]  # the task data and runs a session shares (tests/tasks)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("XLT_SHARED", REPO.parent / "shared"))
E5 = SHARED / "models" / "multilingual-e5-small-xnli"
XNLI = SHARED / "data" / "xnli"
HOOKS = REPO / "tests" / "hooks"  # fault injection, loaded only by the commands of tests that ask

needs_shared = pytest.mark.skipif(not (E5 / "config.json").is_file() or not XNLI.is_dir(),
                                  reason=f"real encoder and XNLI data not found under {SHARED}")

LABELS = ["entailment", "neutral", "contradiction"]  # XNLI's, in label-id order


# The longest files (minutes each: a real encoder, SLURM's requeue delay, Ray's retries), started first:
# pytest-xdist hands out whole files in collection order, and a long one handed out last runs alone.
LONGEST_FIRST = ("report/test_findings_on_the_real_encoder.py", "e2e/test_ray.py", "e2e/test_first_run.py",
                 "e2e/test_stops_in_each_phase.py", "e2e/test_smoke_sweep.py", "e2e/test_slurm.py",
                 "e2e/test_submitit.py", "protocols/test_protocols.py")


def pytest_collection_modifyitems(items):
    order = {f"tests/{path}": rank for rank, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: order.get(item.nodeid.split("::")[0], len(order)))
