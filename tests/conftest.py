"""Shared fixtures: a tiny demo archive, a repo-like working folder, a tiny local BERT."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

# No network here: a hub name would otherwise take over a minute to fail.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

from matching import paths  # noqa: E402
from matching.demo.generator import DemoSize, generate  # noqa: E402
from matching.stages.generate_demo import write_tables  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# The project's files relative to the working directory, which the tests make a tiny project root.
LAYOUT = paths.Layout(Path("."))
TINY = DemoSize(n_train_pairs=500, n_test_pairs=60)


@pytest.fixture(scope="session")
def demo_tables():
    return generate(TINY, seed=3)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A folder laid out like the repo (params.yaml at the top), made the working directory."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["demo"].update(n_train_pairs=TINY.n_train_pairs, n_test_pairs=TINY.n_test_pairs, seed=3)
    params["train"]["n_folds"] = 3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def raw_dir(workdir, demo_tables):
    """The tiny demo archive written where params.yaml's data.raw_dir points."""
    write_tables(demo_tables, workdir / "data" / "demo")
    return workdir / "data" / "demo"


def set_params(workdir: Path, **updates) -> dict:
    """Update params.yaml in `workdir` with dotted keys, e.g. set_params(w, **{"embed.device": "cpu"})."""
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    for dotted, value in updates.items():
        node = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))
    return params


def prepare_with(raw_dir: Path, **updates) -> None:
    """`prepare` on the test archive, then params.yaml with `updates` (dotted keys): a text stage's setup."""
    from matching.stages.prepare import prepare

    prepare(raw_dir, sample=1.0, seed=0)
    set_params(raw_dir.parents[1], **updates)


def save_tiny_bert(folder: Path, corpus: list[str], vocab_size: int = 200, max_positions: int = 128) -> Path:
    """A tiny BERT (seeded weights) and a WordPiece tokenizer of `corpus`, saved as a plain transformers folder."""
    import torch
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers import models as tok_models
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    # The vocabulary built here, not by tokenizers' WordPieceTrainer: that trainer breaks ties between
    # merges of equal count in no fixed order, so one corpus gave different vocabularies run to run (2 of
    # 6 builds), and a test's model with them. Every character (word-initial and `##` continuing), then the
    # most frequent words (ties by name) up to `vocab_size`: no word is unknown, and every build is the same.
    normalizer, pre_tokenizer = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    counts = Counter(
        word for text in corpus for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))
    )
    characters = sorted({character for word in counts for character in word})
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = special + characters + [f"##{character}" for character in characters]
    words = sorted((word for word in counts if len(word) > 1), key=lambda word: (-counts[word], word))
    vocabulary = pieces + words[: max(0, vocab_size - len(pieces))]
    tokenizer = Tokenizer(tok_models.WordPiece({token: i for i, token in enumerate(vocabulary)}, unk_token="[UNK]"))
    tokenizer.normalizer, tokenizer.pre_tokenizer = normalizer, pre_tokenizer
    torch.manual_seed(0)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    config = BertConfig(
        vocab_size=fast.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_positions,
    )
    BertModel(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A tiny BERT sentence-transformer built locally: WordPiece vocab, small BertConfig, mean pooling."""
    from sentence_transformers import SentenceTransformer

    folder = tmp_path_factory.mktemp("tiny_bert")
    corpus = [
        "Смартфон Samsung черный 128 г",
        "Бренд: Funny Ducks; Цвет товара: бежевый",
        "Кастрюля Tefal 2 л, нержавеющая сталь",
        "Наушники беспроводные Xiaomi белые",
    ] * 20
    transformer_dir = save_tiny_bert(folder / "bert", corpus)
    # A plain transformer folder: SentenceTransformer adds mean pooling itself.
    SentenceTransformer(str(transformer_dir), device="cpu").save(str(folder / "st"))
    shutil.rmtree(transformer_dir)
    return folder / "st"


def run(args, cwd, check=True, env=None, cpus=None):
    """Run a command with the project's environment (plus `env`), on the cores `cpus` if given."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "HF_HUB_OFFLINE": "1",
        **(env or {}),
    }
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, preexec_fn=pin)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def shrink(config_text: str) -> str:
    """params.yaml, conf/config.yaml or conf/demo/small.yaml made tiny: demo size and folds."""
    config = yaml.safe_load(config_text)
    tiny = {"n_train_pairs": TINY.n_train_pairs, "n_test_pairs": TINY.n_test_pairs}
    config.get("demo", config if "n_train_pairs" in config else {}).update(tiny)
    if "train" in config:
        config["train"]["n_folds"] = 3
    return yaml.safe_dump(config, allow_unicode=True, sort_keys=False)


def make_repo(root: Path, env=None, cpus=None) -> Path:
    """A git + DVC repository holding this project's pipeline, shrunk to a tiny demo, run once (with
    `env` and on `cpus`, if given)."""
    for name in ("dvc.yaml", "conf", "src", ".dvcignore", ".gitignore", "data/raw/README.md"):
        source = REPO / name
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, root / name)
    (root / ".dvc").mkdir()
    shutil.copy(REPO / ".dvc" / "config", root / ".dvc" / "config")
    for config in ("conf/config.yaml", "conf/demo/small.yaml"):
        (root / config).write_text(shrink((REPO / config).read_text()))
    (root / "params.yaml").write_text(shrink((REPO / "params.yaml").read_text()))
    run(["git", "init", "-q"], root)
    run(["git", "config", "user.name", "test"], root)
    run(["git", "config", "user.email", "test@example.com"], root)
    run(["dvc", "init", "-q", "-f"], root)
    run(["dvc", "config", "hydra.enabled", "true"], root)
    run(["dvc", "repro"], root, env=env, cpus=cpus)
    return root
