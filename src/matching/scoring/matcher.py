"""A trained repository's submitted matcher, loaded once, scoring pairs of products read from an archive folder.

    from matching.scoring import TrainedMatcher
    matcher = TrainedMatcher.load("path/to/trained/repo")
    scores = matcher.score(pairs, "path/to/archive")  # variantid1, variantid2, target

The pairs' catalog products are cut from the catalog store (`matching.scoring.catalog`), the others
read from the archive folder and embedded with the saved encoders; their tables built with the saved
feature transforms, each pair's `neighbours` features ranked among the pipeline's pairs alone (never the
other pairs of its file, so a pair's score does not depend on what comes with it), and scored by the
saved models: nothing is fitted, no label is read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from matching import config, paths
from matching.data import contract
from matching.data.cleaning import check_known_ids, distinct_test_pairs, submission
from matching.data.ids import distinct_ids
from matching.encoders.modalities import TEXT_MODALITIES
from matching.errors import DataError, StageError
from matching.features.columns import KEYS
from matching.features.fitted import FeatureTransforms
from matching.features.neighbours import SavedPairs
from matching.features.pairs import pair_features
from matching.features.products import ProductTables, product_tables
from matching.matchers.saved import SavedModels
from matching.scoring.catalog import CatalogStore
from matching.scoring.products import NewProducts, joined, new_products, saved_text_encoder


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
    """What `dvc repro` left in a repository, loaded once: encoders, feature transforms, the pipeline's
    pairs' similarities, the catalog store and the models of `train.submit`."""

    def __init__(self, root: Path | str | None = None):
        self.layout = paths.Layout(Path(root).resolve()) if root is not None else paths.project()
        if not self.layout.params.exists():
            raise StageError(f"{self.layout.root}: no params.yaml; give the folder of a repository that ran dvc repro")
        self.cfg = config.load(self.layout.params)
        self.models = SavedModels.load(self.layout, self.cfg)
        try:
            self.transforms = FeatureTransforms.load(self.layout.feature_transforms)
            self.saved_pairs = SavedPairs(pd.read_parquet(self.layout.neighbour_candidates))
        except FileNotFoundError as error:
            raise StageError(f"{self.layout.root}: no saved feature transforms ({error}); run `dvc repro` there")
        self.catalog = CatalogStore.load(self.layout)
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

    def score(self, pairs: pd.DataFrame, products_dir: Path | str | None = None, label: str = "pairs") -> pd.DataFrame:
        """`variantid1, variantid2, target` for every row of `pairs`, in order; `target` is the submitted
        model's probability that the two products are the same. Catalog products come from the catalog
        store; `products_dir` holds the files of the others in the archive's format (a pair naming a
        product neither has is refused)."""
        pairs = checked_pairs(pairs, label)
        wanted = distinct_ids(pairs[KEYS].to_numpy(np.int64))
        held = self.catalog.holds(wanted)
        catalog_ids = wanted[held]
        if held.all():
            return self.score_read(pairs, self.catalog.products(catalog_ids))
        if products_dir is None:
            check_known_ids(
                pairs, catalog_ids, label, "that is not in the catalog; give the folder of its card with --products"
            )
        cards = new_products(
            Path(str(products_dir)),
            wanted[~held],
            self.encoders,
            lambda known: check_known_ids(pairs, np.concatenate([known, catalog_ids]), label),
        )
        return self.score_read(pairs, joined(cards, self.catalog.products(catalog_ids)) if held.any() else cards)

    def score_read(self, pairs: pd.DataFrame, products: NewProducts) -> pd.DataFrame:
        """As `score`, for checked pairs of products already read (`new_products`)."""
        return submission(pairs, self.score_products(distinct_test_pairs(pairs), products)[KEYS + ["score"]])

    def score_products(self, distinct: pd.DataFrame, products: NewProducts) -> pd.DataFrame:
        """Every needed matcher's score of each distinct pair (`distinct_test_pairs`) of `products`, and `score`."""
        if distinct.empty:  # the file held self pairs alone
            return distinct.assign(score=np.empty(0))
        tables = self.tables(products)
        features = pair_features(distinct, tables, list(self.cfg.features.groups), self.saved_pairs)
        return self.models.score(features, products.embeddings, cards=products.products)

    def tables(self, products: NewProducts) -> ProductTables:
        """What the pair features read of `products`, with the saved feature transforms (nothing fitted)."""
        return product_tables(
            products.products,
            products.embeddings,
            products.photo_sets,
            self.cfg.features.tfidf_max_features,
            transforms=self.transforms,
        )
