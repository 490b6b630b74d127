"""Each list of names is defined once and agrees with dvc.yaml and conf/; the documented list of the places
a new matcher touches (docs/development.md) is complete (every file that names a matcher is on it)."""

import ast
import dataclasses
import re

import pytest
import yaml

from conftest import REPO
from matching import config
from matching.encoders.modalities import MODALITIES, PRODUCT_VECTORS, TEXT_MODALITIES
from matching.features import pairs
from matching.features.groups import FEATURE_GROUPS, NEIGHBOURS, PAIR_GROUPS, PREFIX
from matching.matchers.names import AUTO, ENSEMBLE, MATCHERS, NETWORKS, SAVED_MATCHERS

CONF = REPO / "conf"
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())


def test_matchers_agree_with_conf_config_and_dvc_yaml():
    assert {p.stem for p in (CONF / "matcher").glob("*.yaml")} == set(MATCHERS)
    assert {p.stem for p in (CONF / "submit").glob("*.yaml")} == {*MATCHERS, ENSEMBLE, AUTO}
    defaults = yaml.safe_load((CONF / "config.yaml").read_text())["defaults"]
    assert [d for d in defaults if isinstance(d, dict) and next(iter(d)).startswith("matcher@")] == [
        {f"matcher@{name}": name} for name in MATCHERS
    ]
    fields = {f.name: f.type for f in dataclasses.fields(config.Config)}
    assert set(MATCHERS) <= set(fields)
    for name in MATCHERS:
        assert (REPO / "src/matching/stages" / f"train_{name}.py").exists()
        assert (REPO / "src/matching/matchers" / f"{name}.py").exists()
    train = DVC["stages"]["train"]
    assert train["foreach"] == "${train.matchers}" and "train_${item}" in train["do"]["cmd"]
    predict_deps = DVC["stages"]["predict"]["deps"]
    for name in SAVED_MATCHERS:
        assert f"src/matching/matchers/{name}.py" in predict_deps, f"predict scores {name} but does not list it"
    assert set(NETWORKS) <= set(SAVED_MATCHERS) <= set(MATCHERS)


def test_feature_groups_agree_with_their_modules_and_prefixes():
    assert FEATURE_GROUPS == (*PAIR_GROUPS, NEIGHBOURS)
    assert list(pairs.GROUPS) == list(PAIR_GROUPS)
    for group, function in pairs.GROUPS.items():
        assert function.__module__ == f"matching.features.{group}", f"{group} is not computed in its own module"
    assert (REPO / "src/matching/features" / f"{NEIGHBOURS}.py").exists()
    assert list(PREFIX) == list(FEATURE_GROUPS) and len(set(PREFIX.values())) == len(PREFIX)
    assert set(yaml.safe_load((REPO / "params.yaml").read_text())["features"]["groups"]) <= set(FEATURE_GROUPS)


def test_modalities_agree_with_the_embedding_stages_and_params():
    outs = [
        (o if isinstance(o, str) else next(iter(o))).replace("${item}", item)
        for s in DVC["stages"].values()
        for item in (s["foreach"] if isinstance(s.get("foreach"), list) else [""])
        for o in s.get("do", s).get("outs", [])
    ]
    for modality in MODALITIES:
        assert f"data/embeddings/{modality}.npz" in outs, f"no stage writes the {modality} embeddings"
    assert list(PRODUCT_VECTORS) == list(MODALITIES)
    embed = yaml.safe_load((REPO / "params.yaml").read_text())["embed"]
    assert {m for m in embed if isinstance(embed[m], dict) and "backend" in embed[m]} == set(TEXT_MODALITIES)
    assert DVC["stages"]["embed_text"]["foreach"] == list(TEXT_MODALITIES)


def _python_words(path) -> set[str]:
    """Names, attributes, imported modules and string constants of a module: its code, without
    docstrings and argparse help texts."""
    tree = ast.parse(path.read_text())
    skipped = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
        ):
            skipped.add(id(body[0].value))
        if isinstance(node, ast.keyword) and node.arg == "help":
            skipped.update(id(n) for n in ast.walk(node.value))
    words = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped:
            words.add(node.value)
        elif isinstance(node, ast.Name):
            words.add(node.id)
        elif isinstance(node, ast.Attribute):
            words.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            words.add(node.name)
        elif isinstance(node, ast.ImportFrom):
            words.update([node.module or "", *(alias.name for alias in node.names)])
        elif isinstance(node, ast.Import):
            words.update(alias.name for alias in node.names)
    return words


def _yaml_words(path) -> set[str]:
    words = set()

    def walk(node):
        if isinstance(node, dict):
            words.update(map(str, node))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            words.add(node)

    walk(yaml.safe_load(path.read_text()))
    return words


def _files_naming(name: str) -> set[str]:
    pattern = re.compile(rf"(?<![A-Za-z])({name}|{name.upper()})(?![A-Za-z])")  # its name or its constant
    found = set()
    for path in [*(REPO / "src").rglob("*.py"), *CONF.rglob("*.yaml"), REPO / "dvc.yaml"]:
        words = _python_words(path) if path.suffix == ".py" else _yaml_words(path)
        if any(pattern.search(word) for word in words):
            found.add(path.relative_to(REPO).as_posix())
    return found


def _documented_touch_list() -> list[str]:
    text = (REPO / "docs" / "development.md").read_text()
    section = text[text.index("A matcher `<name>` touches these places") :].split("\n\n")[0]
    return re.findall(r"`((?:src|conf)/[^`]+|dvc\.yaml)`", section)


def test_the_documented_list_of_a_new_matchers_places_is_complete_and_true():
    listed = _documented_touch_list()
    assert "src/matching/matchers/names.py" in listed and "conf/matcher/<name>.yaml" in listed
    for name in MATCHERS:
        places = {p.replace("<name>", name) for p in listed}
        for place in places - {p for p in places if "*" in p}:
            assert (REPO / place).exists(), f"docs/development.md lists {place}, which does not exist"
        globbed = {p.relative_to(REPO).as_posix() for g in places if "*" in g for p in REPO.glob(g)}
        folders = tuple(p for p in places if p.endswith("/"))  # a listed folder covers what is under it
        unlisted = {f for f in _files_naming(name) - places - globbed if not f.startswith(folders)}
        assert not unlisted, f"{name} is named in {sorted(unlisted)}, which docs/development.md leaves out"


@pytest.mark.parametrize("name", [*MATCHERS, ENSEMBLE])
def test_a_matchers_name_is_written_in_one_module(name):
    written = {
        path.relative_to(REPO).as_posix()
        for path in (REPO / "src").rglob("*.py")
        if any(isinstance(node, ast.Constant) and node.value == name for node in ast.walk(ast.parse(path.read_text())))
    }
    assert written == {"src/matching/matchers/names.py"}
