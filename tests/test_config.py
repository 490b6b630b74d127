"""Hydra composition of conf/ and its agreement with params.yaml and dvc.yaml."""
import itertools
import re

import pytest
import yaml
from conftest import REPO
from matching import compose_params

CONF = REPO / "conf"


def composed(overrides=()):
    return compose_params.composed(list(overrides), CONF)


def options(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_committed_params_are_the_composed_default():
    assert composed() == yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.mark.parametrize("data,model,encoder",
                         list(itertools.product(options("data"), options("model"), options("encoder"))))
def test_every_config_composes_with_the_keys_stages_read(data, model, encoder):
    params = composed([f"data={data}", f"model={model}", f"encoder={encoder}"])
    assert params["data"]["name"] == data
    assert params["train"]["model"] == model
    assert params[model], "the model group brings its own section of knobs"
    backend = {"lexical": "lexical", "transformer": "sentence-transformers"}[encoder]
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
            module = re.search(r"-m (matching\.\w+)", _resolve(body["cmd"], params, item)).group(1)
            deps = [_resolve(d, params, item) for d in body["deps"]]
            assert f"src/{module.replace('.', '/')}.py" in deps, f"{name} does not list its own module"
            for key in body.get("params", []):
                node = params
                for part in _resolve(key, params, item).split("."):
                    assert part in node, f"{name} lists params key {key} that params.yaml lacks"
                    node = node[part]
