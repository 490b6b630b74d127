"""The typed configuration: `params.yaml` read into dataclasses and checked once, when a stage starts.

Each section mirrors a file or group of `conf/`. A wrong type, an unknown key or a value out of range
stops the stage with one line that names the key and says what is allowed (exit status 2), before
any work. LightGBM's booster settings pass through as a mapping (a new knob is one YAML line), checked
against LightGBM's own parameter names.
"""

from __future__ import annotations

import os
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from matching.encoders.modalities import MODALITIES
from matching.errors import ConfigError
from matching.features.groups import FEATURE_GROUPS
from matching.matchers.names import AUTO, DECISIONS, ENSEMBLE, LIGHTGBM, MATCHERS
from matching.schema import between, convert, distinct, fail, positive, section

Device = Literal["auto", "cpu", "cuda"]
Pooling = Literal["cls", "mean", "auto"]  # a pair's vector: [CLS], the tokens' mean, or as the model pools
# The first-level models TabularAutoML builds (its `use_algos` names).
_NEURAL = ("nn", "mlp", "dense", "denselight", "resnet", "snn", "node", "autoint", "tabnet", "fttransformer", "tabm")
LIGHTAUTOML_ALGORITHMS = (
    *("linear_l2", "lgb", "lgb_tuned", "xgb", "xgb_tuned", "cb", "cb_tuned", "rf", "rf_tuned"),
    *_NEURAL,
    *(f"{name}_tuned" for name in _NEURAL),
)


@dataclass(frozen=True)
class TextEmbedding:
    backend: Literal["lexical", "sentence-transformers", "static"]
    model: str  # a hub name or a local folder that SentenceTransformer(path) loads (static: distils)
    batch_size: int = field(metadata=positive())
    max_length: int = field(metadata=positive())
    precision: Literal["float32", "bfloat16", "int8"] = "float32"


@dataclass(frozen=True)
class Lexical:
    dim: int = field(metadata=positive())
    ngram_min: int = field(metadata=positive())
    ngram_max: int = field(metadata=positive())
    max_features: int = field(metadata=positive())
    fit_sample: int = field(metadata=positive())

    def __post_init__(self) -> None:
        if self.ngram_max < self.ngram_min:
            fail("embed.lexical.ngram_max", self.ngram_max, f"a number >= embed.lexical.ngram_min ({self.ngram_min})")


@dataclass(frozen=True)
class Static:
    dims: int = field(metadata=positive())  # PCA of the distilled token vectors
    sif_coefficient: float = field(
        metadata=between(0.0, 1.0, low_open=True, high_open=True)
    )  # token weight a / (a + frequency)


@dataclass(frozen=True)
class Embed:
    device: Device
    attributes: TextEmbedding
    descriptions: TextEmbedding
    lexical: Lexical
    static: Static


@dataclass(frozen=True)
class Features:
    groups: list[Literal[FEATURE_GROUPS]]  # type: ignore[valid-type]
    tfidf_max_features: int = field(metadata=positive())
    tfidf_fit_sample: int = field(metadata=positive())

    def __post_init__(self) -> None:
        distinct("features.groups", self.groups)


@dataclass(frozen=True)
class Train:
    n_folds: int = field(metadata={"min": 2})
    folds: Literal["products", "pairs"]
    # Rows of each fold's train part held out for early stopping, never the fold that is then scored.
    inner_valid_share: float = field(metadata=between(0.0, 0.5, low_open=True))
    submit: str  # what evaluate headlines and predict submits: a matcher of `matchers`, ensemble or auto
    matchers: list[Literal[MATCHERS]]  # type: ignore[valid-type]

    def __post_init__(self) -> None:
        distinct("train.matchers", self.matchers)
        if self.submit not in [*self.matchers, ENSEMBLE, AUTO]:
            fail(
                "train.submit", self.submit, f"one of train.matchers ({', '.join(self.matchers)}), {ENSEMBLE} or {AUTO}"
            )


@dataclass(frozen=True)
class Ensemble:
    method: Literal["stacking", "rank_mean"]


@dataclass(frozen=True)
class Retrieval:
    blocks: list[Literal[MODALITIES]]  # type: ignore[valid-type]  # each modality's product vectors
    lists: int | None = field(metadata=positive())  # the index's inverted lists; null: 2 x sqrt(products)
    encoding: str  # how a list holds a vector, in faiss index-factory words (Flat, SQ8, PQ64x4fs,RFlat)
    probes: int = field(metadata=positive())  # lists a query scans
    rerank: int = field(metadata=positive())  # with RFlat: candidates re-ranked on the full vectors, x k
    k: int = field(metadata=positive(1000))  # candidates a query, scored by the pair model
    eval_queries: int = field(metadata=positive())  # query products recall is measured on (a sample)
    train_queries: int | None = field(metadata=positive())  # train products the candidate model learns from
    unlabelled_weight: float = field(metadata=between(0.0, 1.0, low_open=True))  # an unlabelled candidate's weight
    decision: Literal[DECISIONS]  # type: ignore[valid-type]  # auto: the rule with the better F1 where decided
    # the labelled pairs held out to choose the decision on (null: chosen out of fold)
    calibration_share: float | None = field(metadata=between(0.0, 1.0, low_open=True, high_open=True))
    booster: dict[str, Any] = field(default_factory=dict)  # the candidate model's LightGBM parameters over lightgbm's

    def __post_init__(self) -> None:
        distinct("retrieval.blocks", self.blocks)
        checked_booster("retrieval.booster", self.booster)


@dataclass(frozen=True)
class Data:
    name: str
    raw_dir: str
    sample: float = field(metadata=between(0.0, 1.0, low_open=True))


@dataclass(frozen=True)
class Demo:
    n_train_pairs: int = field(metadata=positive())
    n_test_pairs: int = field(metadata=positive())
    n_products: int | None = field(metadata=positive())
    seed: int = field(metadata={"min": 0})


# LightGBM parameters conf/matcher/ sets, checked by type and range here (one line naming the key); any
# other LightGBM parameter passes LightGBM's own check (`check_booster`).
BOOSTER_KNOBS: dict[str, tuple[type, dict]] = {
    "num_leaves": (int, {"min": 2, "max": 131072}),
    "learning_rate": (float, between(0.0, 10.0, low_open=True)),
    "min_data_in_leaf": (int, {"min": 0}),
    "feature_fraction": (float, between(0.0, 1.0, low_open=True)),
    "bagging_fraction": (float, between(0.0, 1.0, low_open=True)),
    "bagging_freq": (int, {"min": 0}),
    "lambda_l1": (float, {"min": 0.0}),
    "lambda_l2": (float, {"min": 0.0}),
    "max_bin": (int, {"min": 2}),
    "max_depth": (int, {"min": -1}),
    "min_sum_hessian_in_leaf": (float, {"min": 0.0}),
}


@dataclass(frozen=True)
class LightGBM:
    """Round counts and the category blend; every other key is a LightGBM parameter (`booster`)."""

    num_boost_round: int = field(metadata=positive())
    early_stopping_rounds: int = field(metadata=positive())
    category_blend: float = field(metadata=between(0.0, 1.0))
    category_min_pairs: int = field(metadata=positive())
    refit_full: bool
    booster: dict[str, Any] = field(default_factory=dict)
    OPEN_FIELD: typing.ClassVar[str] = "booster"  # keys beyond the declared fields are LightGBM parameters

    def __post_init__(self) -> None:
        checked_booster(LIGHTGBM, self.booster)


def checked_booster(section: str, booster: dict[str, Any]) -> None:
    """LightGBM parameters under `section` of params.yaml checked without LightGBM: a mapping, each
    value a number, a string or true/false, the knobs converted in place (type and range). LightGBM's
    own names and values: `lightgbm_accepts`."""
    if not isinstance(booster, dict):
        fail(section, booster, "a mapping of LightGBM parameters")
    for key, value in booster.items():
        if not isinstance(value, (bool, int, float, str)):
            fail(f"{section}.{key}", value, "a number, a string or true/false")
        if key in BOOSTER_KNOBS:
            hint, bounds = BOOSTER_KNOBS[key]
            booster[key] = convert(value, hint, f"{section}.{key}", bounds)


def lightgbm_accepts(section: str, booster: dict[str, Any]) -> None:
    """Each key of `booster` a name LightGBM accepts (never a thread count) and the values that are
    not knobs of LightGBM's own types and ranges. It imports LightGBM, which the stages that never fit
    it do not pay for: `check_params`, which every stage follows, and the LightGBM fits ask for it."""
    from lightgbm.basic import _ConfigAliases  # the names LightGBM accepts, aliases included

    aliases = _ConfigAliases._get_all_param_aliases()
    known = {name for names in aliases.values() for name in names}
    for key, value in booster.items():
        if key in aliases["num_threads"]:
            fail(
                f"{section}.{key}",
                value,
                "the MATCHING_THREADS environment variable instead (threads change no result)",
            )
        if key not in known:
            fail(f"{section}.{key}", value, "a LightGBM parameter name (https://lightgbm.readthedocs.io)")
    check_booster({k: v for k, v in booster.items() if k not in BOOSTER_KNOBS}, section)


def check_booster(parameters: dict[str, Any], section: str = LIGHTGBM) -> None:
    """LightGBM's own check of `parameters` (types and ranges), its message made one line."""
    if not parameters:
        return
    import lightgbm as lgb
    import numpy as np

    quiet = {"verbosity": -1, "num_threads": 1}
    sys.stderr.flush()
    stderr = os.dup(2)  # LightGBM writes a refused parameter to stderr as Fatal before raising: keep one line
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        data = lgb.Dataset(np.zeros((4, 1)), label=[0, 1, 0, 1], params=quiet).construct()
        lgb.Booster({**parameters, "objective": "binary", **quiet}, data)
    except lgb.basic.LightGBMError as error:
        reason = str(error).split(" at ", 1)[0].strip()
        raise ConfigError(f"params.yaml: {section}: LightGBM refused {parameters} ({reason}); fix that value") from None
    finally:
        os.dup2(stderr, 2)
        os.close(stderr)


@dataclass(frozen=True)
class Fitting:
    """What `fitting.fit_network` reads: the step, batches, reads of the inner split and patience."""

    device: Device
    learning_rate: float = field(metadata=between(0.0, 10.0, low_open=True))
    weight_decay: float = field(metadata={"min": 0.0})
    batch_size: int = field(metadata=positive())
    validate_every: int = field(metadata=positive())
    max_epochs: int = field(metadata=positive())
    patience: int = field(metadata=positive())
    min_delta: float = field(metadata={"min": 0.0})


@dataclass(frozen=True)
class Network(Fitting):
    hidden: int = field(metadata=positive())
    out_dim: int = field(metadata=positive())
    dropout: float = field(metadata=between(0.0, 1.0))


@dataclass(frozen=True)
class SiameseNetwork(Network):
    margin: float = field(default=1.0, metadata={"min": 0.0, "low_open": True})


@dataclass(frozen=True)
class CrossEncoder(Fitting):
    model: str  # a hub name or a local folder: a pretrained transformer and its tokenizer
    # the pair's vector: the model's own head on [CLS], the mean of its tokens, or as the model pools (auto)
    pooling: Pooling
    max_length: int = field(metadata=positive())  # tokens of the pair, both cards
    attribute_count: int = field(metadata={"min": 0})  # attributes a card, most frequent keys first
    description_chars: int = field(metadata={"min": 0})  # description excerpt a card
    warmup_share: float = field(metadata=between(0.0, 1.0))  # of the steps, rising to the step size
    precision: Literal["float32", "bfloat16"]  # bfloat16: autocast on a device that has it
    freeze_word_embeddings: bool  # the vocabulary's vectors kept as pretrained (fewer weights to update)
    group_by_length: bool  # a training batch holds pairs of similar length (less padding to compute)


@dataclass(frozen=True)
class LightAutoML:
    timeout: int = field(metadata=positive())
    cpu_limit: int = field(metadata=positive())
    inner_folds: int = field(metadata={"min": 2})
    algorithms: list[Literal[LIGHTAUTOML_ALGORITHMS]]  # type: ignore[valid-type]

    def __post_init__(self) -> None:
        distinct("lightautoml.algorithms", self.algorithms)


@dataclass(frozen=True)
class Config:
    seed: int = field(metadata={"min": 0})
    embed: Embed
    features: Features
    train: Train
    ensemble: Ensemble
    retrieval: Retrieval
    data: Data
    demo: Demo
    lightgbm: LightGBM
    siamese: SiameseNetwork
    pairwise: Network
    lightautoml: LightAutoML
    cross_encoder: CrossEncoder


def from_dict(params: dict, lightgbm: bool = False) -> Config:
    """The checked configuration of a params mapping; ConfigError on the first bad value. `lightgbm`:
    the booster parameters through LightGBM's own check too (`lightgbm_accepts`)."""
    cfg = section(Config, params, "")
    if lightgbm:
        lightgbm_accepts(LIGHTGBM, cfg.lightgbm.booster)
        lightgbm_accepts("retrieval.booster", cfg.retrieval.booster)
    return cfg


def load(path: Path | str, lightgbm: bool = False) -> Config:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: missing; run stages from the repository (or `make params` to write it)")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not YAML ({str(error).splitlines()[0]}); fix it or run `make params`") from None
    return from_dict(params, lightgbm)
