"""Stage deps are true by construction: every module a stage's command imports, directly or through
other modules, is covered by that stage's `deps` in dvc.yaml (a listed folder covers what is under it),
so a code change reruns every stage whose results it can change. Plumbing that does not change results
is exempt: package __init__ files, `io` and `paths`."""

import ast
import re

import pytest
import yaml

from conftest import REPO
from matching.matchers.names import MATCHERS

SRC = REPO / "src"
EXEMPT = {"io", "paths"}


def module_file(name: str):
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_modules(path, package: str) -> set[str]:
    """Project modules `path` imports anywhere in it (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == "matching" and module_file(name)}


def import_closure(module: str) -> set:
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_file(name)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # importing a.b.c runs a and a.b
        todo.extend(imported_modules(path, package))
    return {module_file(name) for name in seen}


def lookup(params: dict, dotted: str):
    for key in dotted.split("."):
        params = params[key]
    return params


def expanded_stages():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        items = stage.get("foreach", [None])
        if items == "${train.matchers}":  # every matcher a user may name, not only the committed ones
            items = MATCHERS
        elif isinstance(items, str):
            items = lookup(params, items.strip("${}"))
        for item in items:
            text = yaml.safe_dump(stage.get("do", stage))
            text = text.replace("${item}", str(item)) if item is not None else text
            text = re.sub(r"\$\{([^}]+)\}", lambda m: str(lookup(params, m.group(1))), text)
            yield (f"{name}@{item}" if item else name), yaml.safe_load(text)


STAGES = dict(expanded_stages())


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_cover_every_module_its_command_imports(name):
    stage = STAGES[name]
    module = re.search(r"python3? -m ([\w.]+)", stage["cmd"]).group(1)
    assert module_file(module), f"{name}: its command names {module}, which does not exist"
    deps = [(REPO / dep).resolve() for dep in stage["deps"]]
    missing = [
        str(path.relative_to(REPO))
        for path in sorted(import_closure(module))
        if path.name != "__init__.py"
        and path.stem not in EXEMPT
        and not any(path.resolve() == dep or dep in path.resolve().parents for dep in deps)
    ]
    assert not missing, f"{name} imports but does not list {', '.join(missing)}"


def test_the_closure_sees_through_packages_and_function_level_imports():
    closure = {p.relative_to(SRC).as_posix() for p in import_closure("matching.stages.embed_text")}
    assert "matching/encoders/transformer.py" in closure  # imported inside make_encoder only
    assert "matching/encoders/__init__.py" in closure
    assert "matching/features/pairs.py" not in closure


def _out_paths(stage: dict) -> list[str]:
    return [next(iter(out)) if isinstance(out, dict) else out for out in stage.get("outs", [])]


def test_every_data_dep_is_an_output_of_another_stage():
    """A stage that reads data/ or models/ reads what another stage declares as an output; else DVC,
    finding the stage unchanged in dvc.lock, skips it and a fresh clone lacks the file."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    raw_dir = params["data"]["raw_dir"]
    outs = {name: _out_paths(stage) for name, stage in STAGES.items()}
    for name, stage in STAGES.items():
        assert outs[name], f"{name} declares no outputs"
        for dep in stage["deps"]:
            if not dep.startswith(("data/", "models/")) or dep == raw_dir:
                continue
            producers = [
                other
                for other, paths in outs.items()
                if other != name
                and any(dep == out or dep.startswith(out + "/") or out.startswith(dep + "/") for out in paths)
            ]
            assert producers, f"{name} depends on {dep}, which no stage declares as an output"


def test_dvc_lock_records_the_code_and_params_as_they_are():
    """After a change to a stage's code or params, `dvc repro` rewrites dvc.lock, and that is committed
    with it: else a fresh clone's `dvc status` lists the stage, and its first `dvc repro` changes dvc.lock.
    (Outputs a fresh clone lacks are not what this checks.)"""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    status = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--json"], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    stale = {
        f"{stage}: {path}"
        for stage, entries in json.loads(status.stdout).items()
        for entry in entries
        if isinstance(entry, dict)
        for path in entry.get("changed deps", {})
        if path.startswith("src/") or path == "params.yaml"
    }
    assert not stale, f"run dvc repro and commit dvc.lock; changed since it was written: {sorted(stale)}"
