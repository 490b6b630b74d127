"""Trust: runs killed mid-way recover exactly, the same params give the same bytes, nothing leaks,
and nothing the pipeline loads can run code."""

import ast
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, make_repo, run

pytestmark = pytest.mark.slow
RESULTS = [
    "metrics/evaluate/metrics.json",
    "metrics/matchers.json",
    "metrics/ensemble.json",
    "metrics/evaluate/plots/custom/per_category.json",
    "metrics/data_report.json",
    "metrics/evaluate/plots/sklearn/precision_recall.json",
    "metrics/evaluate/plots/sklearn/calibration.json",
    "metrics/evaluate/plots/images/precision_recall.png",
    "metrics/evaluate/plots/images/confusion.png",
    "data/submission.csv",
    "data/retrieval/index.faiss",
    "metrics/retrieval.json",
]


# Every fit on all the cores: the tiny demo's fits are below the rows that go multi-threaded by default.
ALL_THREADS = {"MATCHING_SMALL_WORK_ROWS": "0"}


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """Two independent full runs of the tiny demo with the same params, every fit on several threads."""
    return (
        make_repo(tmp_path_factory.mktemp("first"), env=ALL_THREADS),
        make_repo(tmp_path_factory.mktemp("second"), env=ALL_THREADS),
    )


def results(root: Path) -> dict:
    training = sorted(p for p in (root / "metrics" / "training").rglob("*") if p.suffix in (".csv", ".png", ".tsv"))
    files = RESULTS + [str(p.relative_to(root)) for p in training]
    return {name: (root / name).read_bytes() for name in files}


def test_same_params_give_byte_identical_results(twins):
    first, second = twins
    assert results(first) == results(second)


def test_one_thread_on_one_core_gives_the_same_bytes(twins, tmp_path):
    """The same pipeline with MATCHING_THREADS=1 on one core: LightGBM, torch and the TF-IDF workers all
    run on one thread instead of all the cores (BLAS runs on one in both), and every result keeps its bytes."""
    first, _ = twins
    assert len(os.sched_getaffinity(0)) > 1, "the comparison needs a machine with several cores"
    single = make_repo(tmp_path / "single", env={"MATCHING_THREADS": "1"}, cpus={0})
    assert results(single) == results(first)
    assert (single / "dvc.lock").read_text() == (first / "dvc.lock").read_text()


def test_another_seed_gives_other_results(twins):
    first, _ = twins
    before = results(first)
    run(["dvc", "repro", "-f", "prepare"], first)  # prove a forced rerun alone changes nothing
    assert results(first) == before
    params = yaml.safe_load((first / "params.yaml").read_text())
    params["seed"] += 1
    (first / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))
    run(["dvc", "repro"], first)
    after = results(first)
    assert after["data/submission.csv"] != before["data/submission.csv"]
    assert after["metrics/matchers.json"] != before["metrics/matchers.json"]
    params["seed"] -= 1
    (first / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))
    run(["dvc", "repro"], first)
    assert results(first) == before


def stage_processes(module: str, root: Path) -> list[int]:
    """The stage's processes running in `root` (and only there: other runs on the machine are left alone)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
                cwd = (entry / "cwd").resolve()
            except OSError:
                continue
            if f"matching.{module}".encode() in cmdline and cwd == root.resolve():
                pids.append(int(entry.name))
    return pids


def kill_part_way(root: Path, stage: str, module: str, watch: Path, tries: int = 3) -> str:
    """Force `stage` to run, SIGKILL it as soon as it starts writing under `watch` (else 0.8 s after it
    started: the tiny demo's embed_text now ends about 1.5 s after its process starts, and 1.5 s let it
    finish unseen three times running).

    A stage of the tiny demo can finish within a second, before the watcher sees its process: then
    it is forced again, up to `tries` times."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
    }
    repro = subprocess.Popen(
        ["dvc", "repro", "-f", "-s", stage],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    moment, started = "never started", None
    deadline = time.monotonic() + 120
    while repro.poll() is None and time.monotonic() < deadline:
        pids = stage_processes(module, root)
        if pids:
            started = started or time.monotonic()
            writing = list(watch.glob("**/.*.tmp")) if watch.exists() else []
            if writing or time.monotonic() - started > 0.8:
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                moment = "mid-write" if writing else "mid-run"
                break
        time.sleep(0.005)
    output = repro.communicate(timeout=120)[0]
    if moment == "never started" and repro.returncode == 0 and tries > 1:
        return kill_part_way(root, stage, module, watch, tries - 1)
    assert moment != "never started", output
    assert repro.returncode != 0, f"{stage} finished before it could be killed:\n{output}"
    return moment


@pytest.mark.parametrize(
    "stage,module,watch",
    [
        ("embed_text@attributes", "stages.embed_text", "data/embeddings"),
        ("features", "stages.features", "data/features"),
        ("train@lightgbm", "stages.train_lightgbm", "models/lightgbm"),
        ("train@pairwise", "stages.train_pairwise", "models/pairwise"),
    ],
)
def test_a_stage_killed_part_way_reruns_to_the_same_results(twins, stage, module, watch):
    _, root = twins
    before = results(root)
    lock = (root / "dvc.lock").read_text()
    kill_part_way(root, stage, module, root / watch)
    run(["dvc", "repro"], root)
    assert results(root) == before
    assert (root / "dvc.lock").read_text() == lock
    assert not list(root.glob("data/**/.*.tmp")) and not list(root.glob("models/**/.*.tmp"))


def test_no_test_pair_reaches_training_and_folds_share_no_product(twins):
    root, _ = twins
    test = pd.read_parquet(root / "data" / "prepared" / "test_pairs.parquet")
    test_keys = set(zip(test.variantid1, test.variantid2)) | set(zip(test.variantid2, test.variantid1))
    matchers = yaml.safe_load((root / "params.yaml").read_text())["train"]["matchers"]
    for name in matchers + ["../ensemble"]:
        oof = pd.read_parquet(root / "data" / "scores" / name / "oof.parquet")
        assert not set(zip(oof.variantid1, oof.variantid2)) & test_keys
        products = pd.concat(
            [
                oof[["variantid1", "fold"]].set_axis(["id", "fold"], axis=1),
                oof[["variantid2", "fold"]].set_axis(["id", "fold"], axis=1),
            ]
        )
        assert products.groupby("id").fold.nunique().max() == 1, f"{name}: a product sits in two folds"
    raw_train = pd.read_parquet(root / "data" / "demo" / "train.parquet")
    raw_keys = set(zip(raw_train.variantid1, raw_train.variantid2)) | set(
        zip(raw_train.variantid2, raw_train.variantid1)
    )
    assert raw_keys & test_keys, "the demo plants test pairs in train, so this test can fail"


def test_nothing_loaded_from_models_can_run_code(twins):
    root, _ = twins
    suffixes = {p.suffix for p in (root / "models").rglob("*") if p.is_file()} - {""}
    assert suffixes <= {".txt", ".safetensors", ".json", ".npz", ".parquet"}, suffixes
    index_files = {p.name for p in (root / "data" / "retrieval").iterdir()}
    assert index_files == {"index.faiss", "ids.npy", "index.json"}  # faiss's own format, plain arrays
    saved_arrays = sorted((root / "models").rglob("*.npz"))
    assert {p.parent.name for p in saved_arrays} >= {"attributes", "descriptions", "features"}
    for path in saved_arrays:  # plain arrays: an object (pickled) member would raise here
        with np.load(path, allow_pickle=False) as arrays:
            assert all(arrays[name].dtype.kind in "iuf" for name in arrays.files), path
    sources = list((REPO / "src" / "matching").rglob("*.py"))
    for source in sources:
        tree = ast.parse(source.read_text())
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in node.names
        } | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        # joblib may run work in other processes (Parallel, delayed), never read or write files.
        joblib_names = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "joblib"
            for alias in node.names
        }
        assert joblib_names <= {"Parallel", "delayed"}, source.name
        assert not imported & {"pickle", "dill", "cloudpickle"} and "joblib" not in {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }, source.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", None) == "load"
                and getattr(node.func.value, "id", None) == "torch"
            ):
                keywords = {k.arg: k.value for k in node.keywords}
                assert isinstance(keywords.get("weights_only"), ast.Constant) and keywords["weights_only"].value is True
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", None) == "load"
                and getattr(node.func.value, "id", None) == "np"
            ):
                keywords = {k.arg: k.value for k in node.keywords}
                assert keywords["allow_pickle"].value is False, source.name
            if isinstance(node, ast.Call):
                assert getattr(node.func, "attr", getattr(node.func, "id", None)) != "read_pickle", source.name
    assert sorted((root / "models" / "siamese").glob("fold_*.safetensors"))
    assert np.isfinite(pd.read_csv(root / "data" / "submission.csv").target).all()
