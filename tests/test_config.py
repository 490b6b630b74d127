"""Hydra composition of conf/ and its agreement with params.yaml and dvc.yaml."""

import itertools
import os
import re
import subprocess
import sys

import pytest
import yaml

from conftest import REPO
from matching import compose_params, config, schema
from matching.device import resolve_device
from matching.errors import ConfigError
from matching.matchers.ensemble import submitted_model

CONF = REPO / "conf"


def composed(overrides=()):
    return compose_params.composed(list(overrides), CONF)


def options(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_committed_params_are_the_composed_default():
    assert composed() == yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.mark.parametrize(
    "data,submit,encoder,demo,volume",
    list(
        itertools.product(
            options("data"), options("submit"), options("encoder"), options("demo"), options("volume") + [None]
        )
    ),
)
def test_every_config_composes_and_passes_the_typed_check(data, submit, encoder, demo, volume):
    overrides = [f"data={data}", f"submit={submit}", f"encoder={encoder}", f"demo={demo}"]
    params = composed(overrides + ([f"volume={volume}"] if volume else []))
    checked = config.from_dict(params)
    assert checked.data.name == data
    assert checked.train.submit == submit
    assert schema.as_dict(checked) == params, "the typed config holds every key as composed"
    backend = {"lexical": "lexical", "transformer": "sentence-transformers", "static": "static"}[encoder]
    for modality in ("attributes", "descriptions"):
        assert params["embed"][modality]["backend"] == backend


def test_ozon_names_the_real_hub_models_and_demo_runs_offline():
    ozon, demo = composed(["data=ozon"]), composed(["data=demo"])
    assert ozon["embed"]["attributes"]["model"] == "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"
    assert ozon["embed"]["descriptions"]["model"] == "cointegrated/rubert-tiny2"
    assert ozon["embed"]["attributes"]["backend"] == "sentence-transformers"
    assert demo["embed"]["attributes"]["backend"] == demo["embed"]["descriptions"]["backend"] == "lexical"
    assert ozon["data"]["raw_dir"] == "data/raw"
    offline = composed(["data=ozon", "encoder=lexical"])
    assert offline["embed"]["attributes"]["backend"] == "lexical" and offline["data"]["name"] == "ozon"


def test_the_real_volumes_bring_the_full_volume_settings_and_an_override_undoes_them():
    small = composed()
    for overrides in (["data=ozon"], ["demo=full"], ["volume=full"]):
        full = composed(overrides)
        assert full["lightgbm"]["learning_rate"] > small["lightgbm"]["learning_rate"]
        assert full["lightgbm"]["early_stopping_rounds"] < small["lightgbm"]["early_stopping_rounds"]
        for network in ("siamese", "pairwise"):
            assert full[network]["batch_size"] > small[network]["batch_size"]
            assert full[network]["min_delta"] > small[network]["min_delta"] == 0.0
        assert full["lightgbm"]["num_leaves"] == small["lightgbm"]["num_leaves"]  # only what volume=full names
    undone = composed(["demo=full", "volume=small"])
    assert {k: undone[k] for k in ("lightgbm", "siamese", "pairwise")} == {
        k: small[k] for k in ("lightgbm", "siamese", "pairwise")
    }
    assert undone["demo"]["n_products"] == 2252569


def test_an_override_reaches_params():
    assert composed(["lightgbm.num_leaves=63"])["lightgbm"]["num_leaves"] == 63


def _lookup(params, dotted):
    node = params
    for key in dotted.split("."):
        node = node[key]
    return node


def _resolve(text, params, item=None):
    """DVC's ${...} interpolation, enough of it for dvc.yaml's deps, params and cmd."""
    return re.sub(r"\$\{([^}]+)\}", lambda m: item if m.group(1) == "item" else str(_lookup(params, m.group(1))), text)


def test_each_stage_lists_its_module_and_only_params_that_exist():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        body = stage.get("do", stage)
        items = stage.get("foreach", [None])
        if isinstance(items, str):  # foreach over a params list, e.g. ${train.matchers}
            items = _lookup(params, items.strip("${}"))
        for item in items:
            module = re.search(r"-m (matching\.[\w.]+)", _resolve(body["cmd"], params, item)).group(1)
            deps = [_resolve(d, params, item) for d in body["deps"]]
            assert f"src/{module.replace('.', '/')}.py" in deps, f"{name} does not list its own module"
            for key in body.get("params", []):
                if isinstance(key, dict):  # `params.yaml:` with no keys: every param of the file
                    assert list(key) == ["params.yaml"] and not key["params.yaml"], name
                    continue
                node = params
                for part in _resolve(key, params, item).split("."):
                    assert part in node, f"{name} lists params key {key} that params.yaml lacks"
                    node = node[part]


def _params_with(dotted, value):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    *parents, leaf = dotted.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[leaf] = value
    return params


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("train.n_folds", 1, "train.n_folds is 1; use an integer >= 2"),
        ("train.matchers", [], "train.matchers is []; use a list of at least one name"),
        ("train.matchers", ["lightgbm", "lightgbm"], "each name once (lightgbm repeated)"),
        (
            "train.matchers",
            ["lightgbm; touch pwned"],
            "train.matchers is 'lightgbm; touch pwned'; use one of lightgbm,",
        ),
        ("train.submit", "xgboost", "train.submit is 'xgboost'; use one of train.matchers"),
        ("train.inner_valid_share", 0.0, "train.inner_valid_share is 0.0; use a number > 0.0 and <= 0.5"),
        ("features.groups", [], "features.groups is []"),
        ("features.groups", ["text", "colour"], "features.groups is 'colour'; use one of embeddings,"),
        ("embed.lexical.dim", 0, "embed.lexical.dim is 0; use an integer >= 1"),
        ("embed.lexical.ngram_max", 1, "embed.lexical.ngram_max is 1; use a number >= embed.lexical.ngram_min"),
        ("siamese.max_epochs", 0, "siamese.max_epochs is 0; use an integer >= 1"),
        ("pairwise.dropout", 1.5, "pairwise.dropout is 1.5; use a number >= 0.0 and <= 1.0"),
        ("seed", "abc", "seed is 'abc'; use an integer"),
        ("seed", 1.5, "seed is 1.5; use an integer"),
        ("data.sample", 0, "data.sample is 0"),
        ("ensemble.method", "vote", "ensemble.method is 'vote'; use one of stacking, rank_mean"),
        ("lightgbm.num_leafs", 63, "lightgbm.num_leafs is 63; use a LightGBM parameter name"),
        ("lightgbm.n_jobs", 4, "lightgbm.n_jobs is 4; use the MATCHING_THREADS environment variable"),
        ("lightgbm.refit_full", "yes", "lightgbm.refit_full is 'yes'; use true or false"),
        ("pairwise.margin", 1.0, "pairwise.margin is 1.0; use only the keys device, learning_rate"),
        ("lightgbm.num_leaves", "abc", "lightgbm.num_leaves is 'abc'; use an integer"),
        ("lightgbm.num_leaves", 1, "lightgbm.num_leaves is 1; use an integer >= 2"),
        ("lightgbm.learning_rate", -1, "lightgbm.learning_rate is -1.0; use a number > 0.0"),
        ("lightgbm.feature_fraction", 1.5, "lightgbm.feature_fraction is 1.5; use a number > 0.0 and <= 1.0"),
        ("lightgbm.min_gain_to_split", -3, "LightGBM refused {'min_gain_to_split': -3} (Check failed"),
        ("lightgbm.extra_trees", "maybe", "LightGBM refused {'extra_trees': 'maybe'} (Parameter extra_trees"),
        ("lightautoml.algorithms", ["lgb", "xgboost"], "lightautoml.algorithms is 'xgboost'; use one of linear_l2"),
        ("lightautoml.algorithms", ["lgb", "lgb"], "each name once (lgb repeated)"),
        ("cross_encoder.attribute_count", -1, "cross_encoder.attribute_count is -1; use an integer >= 0"),
        ("retrieval.decision", "mutual", "retrieval.decision is 'mutual'; use one of auto, threshold, best"),
        ("retrieval.unlabelled_weight", 0, "retrieval.unlabelled_weight is 0.0; use a number > 0.0 and <= 1.0"),
        ("retrieval.train_queries", 0, "retrieval.train_queries is 0; use an integer >= 1"),
        ("retrieval.calibration_share", 1, "retrieval.calibration_share is 1.0; use a number > 0.0 and < 1.0"),
        ("retrieval.booster", 5, "retrieval.booster is 5; use a mapping of LightGBM parameters"),
        ("retrieval.booster.num_leafs", 63, "retrieval.booster.num_leafs is 63; use a LightGBM parameter name"),
        ("retrieval.booster.num_leaves", 1, "retrieval.booster.num_leaves is 1; use an integer >= 2"),
        ("retrieval.booster.num_threads", 4, "retrieval.booster.num_threads is 4; use the MATCHING_THREADS"),
        ("retrieval.booster.extra_trees", "maybe", "retrieval.booster: LightGBM refused {'extra_trees': 'maybe'}"),
    ],
)
def test_a_bad_value_is_refused_with_its_key_and_what_is_allowed(key, value, message):
    with pytest.raises(ConfigError) as error:
        config.from_dict(_params_with(key, value), lightgbm=True)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_only_the_lightgbm_check_imports_lightgbm_and_it_refuses_what_the_plain_check_passes():
    """Stages that never fit LightGBM read params without importing it; `check_params`, which every
    stage follows, runs LightGBM's own check of the booster parameters."""
    code = (
        "import sys, yaml; from matching import config; params = yaml.safe_load(open('params.yaml'));"
        "params['lightgbm']['num_leafs'] = 63; config.from_dict(params); print('lightgbm' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert result.stdout.strip() == "False"
    with pytest.raises(ConfigError, match="lightgbm.num_leafs is 63; use a LightGBM parameter name"):
        config.from_dict(_params_with("lightgbm.num_leafs", 63), lightgbm=True)


def _leaves(node, prefix=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), node


def _every_leaf_of_conf():
    """Every key any option of conf/ sets, with a value it takes there."""
    leaves = {}
    for group in ("data", "submit", "encoder", "demo", "volume"):
        for option in options(group):
            leaves.update(_leaves(composed([f"{group}={option}"])))
    return sorted(leaves.items())


@pytest.mark.parametrize("key,value", _every_leaf_of_conf())
def test_every_leaf_of_conf_refuses_a_wrong_type_in_one_line(key, value):
    wrong = 12345 if isinstance(value, str) else "abc"  # a number for a string, a string for anything else
    with pytest.raises(ConfigError) as error:
        config.from_dict(_params_with(key, wrong))
    assert str(error.value).startswith(f"params.yaml: {key} is {wrong!r}; use ") and "\n" not in str(error.value)


@pytest.mark.parametrize(
    "key", [key for key, value in _every_leaf_of_conf() if isinstance(value, int) and not isinstance(value, bool)]
)
def test_every_integer_leaf_refuses_a_count_the_c_libraries_cannot_hold(key):
    """LightGBM, faiss and torch take counts as 32-bit C ints: a larger one would overflow inside them."""
    with pytest.raises(ConfigError) as error:
        config.from_dict(_params_with(key, schema.INT_MAX + 1))
    message = str(error.value)
    assert message.startswith(f"params.yaml: {key} is {schema.INT_MAX + 1}; use an integer ") and "\n" not in message
    assert 0 < int(re.search(r"<= (\d+)$", message).group(1)) <= schema.INT_MAX


def test_a_missing_key_is_named():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    del params["train"]["n_folds"]
    with pytest.raises(ConfigError, match=r"train.n_folds is missing"):
        config.from_dict(params)


def test_submit_auto_follows_the_ensemble_stages_choice_and_a_fixed_choice_reads_nothing(tmp_path):
    choice = tmp_path / "ensemble.json"
    auto = config.from_dict(_params_with("train.submit", "auto")).train
    with pytest.raises(ConfigError, match="ensemble.json: missing; train.submit auto"):
        submitted_model(auto, choice)
    for chosen in ("lightgbm", "ensemble"):
        choice.write_text(f'{{"auto_choice": "{chosen}"}}')
        assert submitted_model(auto, choice) == chosen
    fixed = config.from_dict(_params_with("train.submit", "siamese")).train
    assert submitted_model(fixed, tmp_path / "absent.json") == "siamese"


def test_a_new_lightgbm_knob_is_one_yaml_line():
    from matching.matchers.lightgbm import booster_params

    checked = config.from_dict(_params_with("lightgbm.max_bin", 63))
    assert checked.lightgbm.booster["max_bin"] == 63 and checked.lightgbm.booster["num_leaves"] == 31
    assert booster_params(checked.lightgbm, seed=5)["max_bin"] == 63


def test_a_stage_refuses_bad_params_in_one_line_before_any_work(tmp_path):
    params = _params_with("train.n_folds", 1)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run(
        [sys.executable, "-m", "matching.stages.train_lightgbm"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: params.yaml: train.n_folds is 1; use an integer >= 2"
    assert not (tmp_path / "models").exists()


def test_stage_output_is_logging_with_a_level_switch(tmp_path):
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())

    def check_params(level: str | None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != "MATCHING_LOG_LEVEL"}
        env.update({"MATCHING_LOG_LEVEL": level} if level else {})
        command = [sys.executable, "-m", "matching.stages.check_params"]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)

    assert "check_params: matchers lightgbm" in check_params(None).stdout  # INFO by default
    quiet = check_params("warning")
    assert quiet.returncode == 0 and "check_params: matchers" not in quiet.stdout
    assert "stage check_params:" in quiet.stdout  # the closing line (time, memory) stays, for benchmarks/
    wrong = check_params("LOUD")
    assert wrong.returncode == 2
    assert wrong.stderr.strip() == "error: MATCHING_LOG_LEVEL is 'LOUD'; use one of DEBUG, INFO, WARNING, ERROR"


def _thread_settings(env: dict) -> subprocess.CompletedProcess:
    """What a fresh interpreter's `matching` makes of MATCHING_THREADS (it is read at import)."""
    code = (
        "import os, matching, lightgbm, torch; from matching.matchers.lightgbm import booster_params;"
        "from matching import config; cfg = config.from_dict(__import__('yaml').safe_load(open('params.yaml')));"
        "print(matching.THREADS, os.environ['OMP_NUM_THREADS'], booster_params(cfg.lightgbm, 1)['num_threads'],"
        " __import__('matching.matchers.networks').matchers.networks.torch.get_num_threads())"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True
    )


def test_matching_threads_is_the_one_thread_setting():
    result = _thread_settings({"MATCHING_THREADS": "3", "OMP_NUM_THREADS": "7"})
    assert result.stdout.split() == ["3", "3", "3", "3"], result.stderr


def test_threads_default_to_the_cores_this_process_may_use():
    result = _thread_settings({"MATCHING_THREADS": ""})
    cores = str(len(os.sched_getaffinity(0)))
    assert result.stdout.split() == [cores] * 4, result.stderr


def test_small_work_runs_on_one_thread_and_large_work_on_all():
    code = (
        "import matching; from matching.matchers.lightgbm import booster_params; from matching import config;"
        "cfg = config.from_dict(__import__('yaml').safe_load(open('params.yaml'))).lightgbm;"
        "print(*(booster_params(cfg, 1, rows)['num_threads'] for rows in (1_000, matching.SMALL_WORK_ROWS)))"
    )
    for threads, expected in (("3", ["1", "3"]), ("1", ["1", "1"])):
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            env={**os.environ, "MATCHING_THREADS": threads},
            capture_output=True,
            text=True,
        )
        assert result.stdout.split() == expected, result.stderr


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_thread_count_is_refused_in_one_line(value):
    result = _thread_settings({"MATCHING_THREADS": value})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: MATCHING_THREADS is {value!r}; use a whole number of threads >= 1 "
        f"(this machine: {len(os.sched_getaffinity(0))} cores)"
    ]


def test_a_gpu_device_without_a_gpu_is_refused_in_one_line():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="a device is cuda, but torch sees no GPU here; set it to auto or cpu"):
        resolve_device("cuda")
    assert resolve_device("auto") == resolve_device("cpu") == "cpu"


def test_check_params_names_a_missing_raw_folder_or_file_in_one_line_before_any_stage(tmp_path):
    params = _params_with("data.raw_dir", "no/such/folder")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    command = [sys.executable, "-m", "matching.stages.check_params"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: ") and "no/such/folder: no such folder" in result.stderr
    assert "set data.raw_dir" in result.stderr
    assert not (tmp_path / "data" / "params_checked.txt").exists()
    (tmp_path / "no" / "such" / "folder").mkdir(parents=True)
    (tmp_path / "no" / "such" / "folder" / "train.parquet").write_bytes(b"")
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2 and "missing test.parquet, attributes.parquet" in result.stderr
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_params_with("data.raw_dir", "data/demo")))
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr  # the demo's folder is generate_demo's to write
