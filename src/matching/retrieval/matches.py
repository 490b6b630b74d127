"""A product's matches in the whole catalog: the index's k nearest products, scored by the candidate
model (`candidate_model`, trained on retrieved candidates as these), ranked by that score, and the
predicted matches marked by its decision rule and threshold (chosen out of fold). The query is a
catalog product (by id) or a new card (a folder in the archive's format, embedded as the catalog was,
with the saved encoders and feature transforms that `matching-score` uses); the catalog's products are
cut from the catalog store (`matching.scoring.catalog`), never read from the raw archive."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from matching.data.ids import distinct_ids
from matching.retrieval.candidate_model import CandidateModel, candidate_features
from matching.retrieval.candidates import candidate_table, catalog_rows, without_self
from matching.retrieval.index import CatalogIndex
from matching.retrieval.vectors import block_vectors
from matching.scoring.matcher import TrainedMatcher
from matching.scoring.products import NewProducts, card_ids, joined, new_products

MATCH_COLUMNS = ["query_id", "candidate_id", "rank", "ann_score", "match_probability", "predicted_match"]


def ranked(candidates: pd.DataFrame, probability: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    """Candidates with their match probability and decision, each query's ranked by the probability
    (rank 1 the likeliest; ties by the index's score)."""
    scored = candidates.assign(match_probability=probability.astype(np.float32), predicted_match=predicted)
    scored = scored.sort_values(
        ["query_id", "match_probability", "ann_score"], ascending=[True, False, False], kind="stable"
    )
    scored["rank"] = (scored.groupby("query_id").cumcount() + 1).astype(np.int32)
    return scored[MATCH_COLUMNS].reset_index(drop=True)


class CatalogMatcher:
    """A trained repository's index, encoders and candidate model, loaded once."""

    def __init__(self, root: Path | str | None = None):
        self.matcher = TrainedMatcher.load(root)
        self.layout, self.cfg = self.matcher.layout, self.matcher.cfg
        self.index = CatalogIndex.load(self.layout.retrieval_index)
        self.model = CandidateModel.load(self.layout.candidate_model)
        self.seconds: dict[str, float] = {}  # the last call's phases: embed (cards), search, score

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[phase] = time.perf_counter() - start

    @classmethod
    def load(cls, root: Path | str | None = None) -> CatalogMatcher:
        return cls(root)

    def candidates(self, query_ids: np.ndarray, k: int | None = None, label: str = "queries") -> pd.DataFrame:
        """Each query's k nearest other catalog products (`retrieval.k` by default), by the index."""
        query_ids = distinct_ids(np.asarray(query_ids, dtype=np.int64))
        with self.timed("search"):
            vectors = self.index.vectors(catalog_rows(self.index.ids, query_ids, label))
            return self.nearest(query_ids, vectors, k)

    def nearest(self, query_ids: np.ndarray, vectors: np.ndarray, k: int | None = None) -> pd.DataFrame:
        """The k nearest catalog products to each vector, never the product of the query's own id."""
        k = min(k or self.cfg.retrieval.k, len(self.index.ids))  # no query has more candidates than the catalog
        searched = min(k + 1, len(self.index.ids))
        found, scores = self.index.search(vectors, searched, self.cfg.retrieval.probes, self.cfg.retrieval.rerank)
        return candidate_table(query_ids, *without_self(query_ids, found, scores, k))

    def find(self, query_ids: np.ndarray, k: int | None = None, label: str = "queries") -> pd.DataFrame:
        """`query_id, candidate_id, rank, ann_score, match_probability, predicted_match` for each query's
        candidates, ranked by the candidate model's probability."""
        self.seconds = {}
        candidates = self.candidates(query_ids, k, label)
        with self.timed("score"):
            ids = distinct_ids(np.r_[candidates.query_id.to_numpy(), candidates.candidate_id.to_numpy()])
            return self.scored(candidates, self.matcher.catalog.products(ids))

    def scored(self, candidates: pd.DataFrame, products: NewProducts) -> pd.DataFrame:
        """The candidates scored and decided by the candidate model, `products` holding their cards."""
        features = candidate_features(candidates, self.matcher.tables(products), list(self.cfg.features.groups))
        probability = self.model.probability(features)
        return ranked(candidates, probability, self.model.decide(candidates.query_id.to_numpy(), probability))

    def find_cards(self, cards_dir: Path | str, k: int | None = None) -> pd.DataFrame:
        """As `find`, for every card of a folder in the archive's format (attributes, text_and_bert and
        resnet files): each card is embedded by the saved encoders, searched, and scored against its
        candidates' catalog cards. A card reusing a catalog product's id stands for that product."""
        cards_dir, self.seconds = Path(cards_dir), {}
        with self.timed("embed"):
            query_ids = card_ids(cards_dir)
            cards = new_products(
                cards_dir,
                query_ids,
                self.matcher.encoders,
                fix="point --cards at a folder holding the new cards' files",
            )
            vectors = block_vectors(cards.embeddings, self.index.settings["blocks"])
        with self.timed("search"):
            candidates = self.nearest(query_ids, vectors, k)
        with self.timed("score"):
            catalog = self.matcher.catalog.products(distinct_ids(candidates.candidate_id.to_numpy()))
            return self.scored(candidates, joined(cards, catalog))
