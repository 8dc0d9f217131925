"""The hub path, with local stand-ins (tests/standins/) for the hub, its cache, a copy of
facebook/xnli, a hub that never answers and an HTTPS proxy. Nothing here touches the network."""
import os
import shutil
import ssl
import time

import pytest

from commands import run_xlt, xlt_cli
from conftest import XNLI, needs_shared
from standins.checkpoints import tiny_checkpoint
from standins.dataset_repos import xnli_mirror
from standins.hub import ConnectProxy, FakeHub, cache_repo, self_signed
from standins.servers import free_port, silent_server
from stores import mlflow_runs

A, B, D = "a" * 40, "b" * 40, "d" * 40
REPO = "org/tiny-bert"
# A tiny job on a hub-style checkpoint: seconds, not minutes.
SMALL = ["model=mbert", f"model.path={REPO}", "model.name=hubtiny", "data=xnli", "languages.eval=[en,de]",
         "train.max_train_samples=64", "data.max_eval_samples=32", "data.max_test_samples=32", "train.epochs=1",
         "train.batch_size=16", "train.eval_steps=4"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Two tiny checkpoints (different weights) and a copy of the facebook/xnli repo (en, de)."""
    root = tmp_path_factory.mktemp("hubfiles")
    mirror = xnli_mirror(root / "xnli", XNLI, langs=("en", "de")) if XNLI.is_dir() else None
    return {"a": tiny_checkpoint(root / "a", seed=0), "b": tiny_checkpoint(root / "b", seed=1), "mirror": mirror}


def hub_env(tmp_path, **extra):
    """The environment of a user's machine: the hub switched on, a cache of its own."""
    on = {k: "0" for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")}
    return {**on, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_ETAG_TIMEOUT": "3", **extra}


def params(out, experiment="xlt"):
    _, runs = mlflow_runs(out, experiment)
    return [(r.info.status, r.data.params.get("model.commit"), r.data.params.get("data.commit")) for r in runs]


@pytest.fixture
def online(monkeypatch):
    """This process on a fake hub: huggingface_hub reads its endpoint and switches at call time."""
    hubs = []

    def start(repos, port=None):
        if port is None:
            hubs.append(FakeHub(repos))
            port = hubs[-1].port
        monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", f"http://127.0.0.1:{port}")
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_ETAG_TIMEOUT", 2)

    for name in ("XLT_HUB_PINS", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):  # restored after the test
        monkeypatch.setenv(name, os.environ.get(name, ""))
    yield start
    for hub in hubs:
        hub.close()


# -- one line, with its cause, before any job -----------------------------------------------

@pytest.mark.parametrize("repo, revision, expected", [
    ("org/gated", "main", "model.path: model 'org/gated' is gated: accept its terms on the hub, then set HF_TOKEN"),
    ("org/gone", "main", "model.path: model 'org/gone' is not on the Hugging Face Hub (private? set HF_TOKEN;"),
    (REPO, "v9", "model.revision: model 'org/tiny-bert' has no revision 'v9'; give a branch, tag or commit"),
])
def test_a_hub_refusal_keeps_its_cause(online, files, repo, revision, expected):
    from xlt.cli.precheck import check

    online({("model", "org/gated"): {"error": "GatedRepo"}, ("model", REPO): {"refs": {"main": A}, "dir": files["a"]}})
    problem = check([f"model.path={repo}", f"model.revision={revision}", "data=sample"])
    assert problem.startswith(expected), problem


def test_the_sweep_pins_a_revision_to_its_commit(online, files):
    from xlt.cli.precheck import check
    from xlt.data import hub

    online({("model", REPO): {"refs": {"main": A, "v1": B}, "dir": files["a"]}})
    assert check([f"model.path={REPO}", "model.revision=v1", "data=sample"]) is None
    pins = hub.json.loads(os.environ[hub.PINS_ENV])
    assert pins[f"model:{REPO}@v1"]["commit"] == B
    # A job reads the sweep's answer, even after the branch moved on the hub.
    online({("model", REPO): {"refs": {"main": A, "v1": D}, "dir": files["a"]}})
    from xlt.config import ModelConfig

    source = hub.model_source(ModelConfig(name="m", source="hub", path=REPO, revision="v1"))
    assert (source.path, source.revision, source.identity) == (REPO, B, f"{REPO}@{B}")


def test_a_hub_that_never_answers_fails_in_bounded_time(online, tmp_path):
    from xlt.cli.precheck import check

    sock, port = silent_server()
    try:
        online({}, port=port)
        started = time.monotonic()
        problem = check(["model.path=org/uncached", "data=sample"])
        assert time.monotonic() - started < 30
        assert problem.startswith("model.path: 'org/uncached' (main) is not in the Hugging Face cache and the hub "
                                  "did not answer (ReadTimeout"), problem
        assert "model=local model.path=DIR" in problem
    finally:
        sock.close()


def test_an_uncached_dataset_offline_is_refused_before_any_job(monkeypatch, tmp_path):
    from xlt.cli.precheck import check

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    problem = check(["model=tiny", "data=xnli"])
    assert problem.startswith("data.hub_id: 'facebook/xnli' (main) is not in the Hugging Face cache and the hub did "
                              "not answer (HF_HUB_OFFLINE is set); use data=sample"), problem


def test_a_local_model_is_identified_by_its_weights(files, tmp_path):
    from xlt.config import ModelConfig
    from xlt.data.hub import model_source

    model = shutil.copytree(files["a"], tmp_path / "m")
    cfg = ModelConfig(name="m", source="local", path=str(model))
    before, weights = model_source(cfg).identity, model / "model.safetensors"
    stat = weights.stat()
    shutil.copyfile(files["b"] / "model.safetensors", weights)  # same size, same name
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the same mtime
    assert weights.stat().st_size == stat.st_size and model_source(cfg).identity != before


# -- a user's runs, in subprocesses ----------------------------------------------------------

@pytest.mark.heavy  # a proxy and a hub stand-in in real processes; the default run keeps the hub stand-in in-process
@pytest.mark.slow
@needs_shared
def test_through_an_https_proxy_only_the_splits_used_are_downloaded(files, tmp_path):
    cert = self_signed(tmp_path, "huggingface.co")
    if cert is None:
        pytest.skip("the openssl command is needed for the stand-in hub's certificate")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(*cert)
    hub = FakeHub({("model", REPO): {"refs": {"main": A}, "dir": files["a"]},
                   ("dataset", "facebook/xnli"): {"refs": {"main": B}, "dir": files["mirror"]}}, tls=tls)
    proxy = ConnectProxy(hub.port)
    try:
        # The hub's own name: reachable only through the proxy, which tunnels to the stand-in.
        env = hub_env(tmp_path, HTTPS_PROXY=f"http://127.0.0.1:{proxy.port}", SSL_CERT_FILE=str(cert[0]))
        result = run_xlt(*SMALL, f"output_dir={tmp_path / 'out'}", env=env, timeout=300)
    finally:
        proxy.close(), hub.close()
    assert result.returncode == 0, result.stderr[-3000:]
    assert set(proxy.connects) == {"huggingface.co:443"}
    assert params(tmp_path / "out") == [("FINISHED", f"{REPO}@{A}", f"facebook/xnli@{B}")]
    downloaded = {p.split(f"/resolve/{B}/")[1] for p in hub.requests if "/datasets/facebook/xnli/resolve/" in p}
    assert downloaded == {"README.md", "en/train-00000-of-00001.parquet"} | {
        f"{lang}/{split}-00000-of-00001.parquet" for lang in ("en", "de") for split in ("validation", "test")}
    assert "de/train" not in result.stdout + result.stderr


@pytest.mark.heavy  # three real processes (the hub's offline switch is read as one starts): CI's heavy phase
@pytest.mark.slow
@needs_shared
def test_offline_from_the_cache_pinned_and_reproducible(files, tmp_path):
    """The hub refuses connections; the model is cached under its legacy id, the data is a local
    copy of the repo whose unused split is unreadable. Then the branch moves to new weights."""
    cache = tmp_path / "hf" / "hub"
    cache_repo(cache, "tiny-bert", files["a"], A)  # filled before the hub moved it under org/
    mirror = shutil.copytree(files["mirror"], tmp_path / "xnli")
    (mirror / "de" / "train-00000-of-00001.parquet").write_bytes(b"never read")
    env = hub_env(tmp_path, HF_ENDPOINT=f"http://127.0.0.1:{free_port()}")
    out = tmp_path / "out"
    command = [*SMALL, f"data.hub_id={mirror}", "technique=feature_extraction", f"output_dir={out}"]

    first = run_xlt(*command, env=env, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    assert ("xlt: note: the Hugging Face Hub did not answer; jobs run offline from the cache: "
            f"tiny-bert@{A[:10]}") in first.stderr
    [(status, model, data)] = params(out)
    assert (status, model) == ("FINISHED", f"tiny-bert@{A}") and data.startswith(f"{mirror}@sha256:")

    cache_repo(cache, "tiny-bert", files["b"], B)  # main now points at other weights
    second = run_xlt(*command, env=env, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert sorted(p[1] for p in params(out)) == [f"tiny-bert@{A}", f"tiny-bert@{B}"]
    # The features of the old weights are not reused for the new ones.
    assert len(list((out / "cache" / "features").glob("train.en.*"))) == 2

    _, runs = mlflow_runs(out, "xlt")
    first_dir = next(r.data.tags["xlt.job_dir"] for r in runs if r.data.params["model.commit"].endswith(A))
    again = xlt_cli("reproduce", first_dir, "tracking.experiment=again", env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert [p[1] for p in params(out, "again")] == [f"tiny-bert@{A}"]


@pytest.mark.heavy
@needs_shared
def test_translate_train_downloads_its_own_language_only(files, tmp_path):
    hub = FakeHub({("model", REPO): {"refs": {"main": A}, "dir": files["a"]},
                   ("dataset", "facebook/xnli"): {"refs": {"main": B}, "dir": files["mirror"]}})
    try:
        env = hub_env(tmp_path, HF_ENDPOINT=f"http://127.0.0.1:{hub.port}")
        result = run_xlt(*SMALL, "protocol=translate_train", "protocol.target=de", f"output_dir={tmp_path / 'out'}",
                         env=env, timeout=300)
    finally:
        hub.close()
    assert result.returncode == 0, result.stderr[-3000:]
    downloaded = {p.split(f"/resolve/{B}/")[1] for p in hub.requests if "/datasets/facebook/xnli/resolve/" in p}
    assert downloaded == {"README.md"} | {f"de/{split}-00000-of-00001.parquet" for split in ("train", "validation",
                                                                                           "test")}
