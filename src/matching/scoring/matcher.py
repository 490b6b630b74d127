"""A trained repository's submitted matcher, loaded once, scoring pairs of products read from an archive folder.

    from matching.scoring import TrainedMatcher
    matcher = TrainedMatcher.load("path/to/trained/repo")
    scores = matcher.score(pairs, "path/to/archive")  # variantid1, variantid2, target

The pairs' products are read and embedded with the saved encoders, their tables built with the saved
feature transforms, their features computed with the training pairs as the `neighbours` group's other
candidates, and scored by the saved models: nothing is fitted, no label is read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from matching import config, paths
from matching.data import contract
from matching.data.cleaning import check_known_ids, distinct_test_pairs, submission, unordered_key
from matching.encoders.modalities import TEXT_MODALITIES
from matching.errors import DataError, StageError
from matching.features.columns import KEYS
from matching.features.fitted import FeatureTransforms
from matching.features.pairs import pair_features
from matching.features.products import product_tables
from matching.matchers.saved import SavedModels
from matching.scoring.products import NewProducts, new_products, saved_text_encoder


def checked_pairs(pairs: pd.DataFrame, label: str) -> pd.DataFrame:
    """The pairs' two id columns, refused in one line if absent, not integer, null or empty."""
    absent = [k for k in KEYS if k not in pairs]
    if absent:
        raise DataError(f"{label}: missing column {', '.join(absent)} (has {', '.join(map(str, pairs.columns))})")
    if pairs.empty:
        raise DataError(f"{label}: has no rows; give at least one pair to score")
    table = pa.Table.from_pandas(pairs[KEYS], preserve_index=False)
    return pd.DataFrame({k: contract.check_ids(table, k, label, unique=False) for k in KEYS})


class TrainedMatcher:
    """What `dvc repro` left in a repository, loaded once: encoders, feature transforms, the training
    pairs' similarities and the models of `train.submit`."""

    def __init__(self, root: Path | str | None = None):
        self.layout = paths.Layout(Path(root).resolve()) if root is not None else paths.project()
        if not self.layout.params.exists():
            raise StageError(f"{self.layout.root}: no params.yaml; give the folder of a repository that ran dvc repro")
        self.cfg = config.load(self.layout.params)
        self.models = SavedModels.load(self.layout, self.cfg)
        try:
            self.transforms = FeatureTransforms.load(self.layout.feature_transforms)
            self.candidates = pd.read_parquet(self.layout.neighbour_candidates)
        except FileNotFoundError as error:
            raise StageError(f"{self.layout.root}: no saved feature transforms ({error}); run `dvc repro` there")
        self.encoders = {
            m: saved_text_encoder(self.layout.encoder_dir(m), self.cfg.embed.device, self.layout.static_model(m))
            for m in TEXT_MODALITIES
        }

    @classmethod
    def load(cls, root: Path | str | None = None) -> TrainedMatcher:
        return cls(root)

    @property
    def model(self) -> str:
        """The submitted model (`train.submit`, `auto` resolved)."""
        return self.models.submit

    def score(self, pairs: pd.DataFrame, products_dir: Path | str, label: str = "pairs") -> pd.DataFrame:
        """`variantid1, variantid2, target` for every row of `pairs`, in order; `target` is the submitted
        model's probability that the two products are the same. `products_dir` holds the products' files
        in the archive's format; a pair naming a product they lack is refused."""
        pairs = checked_pairs(pairs, label)
        wanted = np.unique(pairs[KEYS].to_numpy(np.int64))
        products = new_products(
            Path(products_dir), wanted, self.encoders, lambda known: check_known_ids(pairs, known, label)
        )
        return self.score_read(pairs, products)

    def score_read(self, pairs: pd.DataFrame, products: NewProducts) -> pd.DataFrame:
        """As `score`, for checked pairs of products already read (`new_products`)."""
        return submission(pairs, self.score_products(distinct_test_pairs(pairs), products)[KEYS + ["score"]])

    def score_products(self, distinct: pd.DataFrame, products: NewProducts) -> pd.DataFrame:
        """Every needed matcher's score of each distinct pair (`distinct_test_pairs`) of `products`, and `score`."""
        if distinct.empty:  # the file held self pairs alone
            return distinct.assign(score=np.empty(0))
        tables = product_tables(
            products.products,
            products.embeddings,
            products.photo_sets,
            self.cfg.features.tfidf_max_features,
            transforms=self.transforms,
        )
        features = pair_features(distinct, tables, list(self.cfg.features.groups), self.other_candidates(distinct))
        return self.models.score(features, products.embeddings, cards=products.products)

    def other_candidates(self, distinct: pd.DataFrame) -> pd.DataFrame:
        """The training pairs a new pair is ranked among, less those the new pairs repeat (the pipeline
        drops test pairs from train, so a pair never counts twice)."""
        known = unordered_key(self.candidates.variantid1.to_numpy(), self.candidates.variantid2.to_numpy())
        repeated = known.isin(unordered_key(distinct.variantid1.to_numpy(), distinct.variantid2.to_numpy()))
        return self.candidates[~repeated].reset_index(drop=True)
