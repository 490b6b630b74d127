"""Every file the pipeline reads or writes, in one place, under the project root.

The root is `$MATCHING_ROOT` when set, else the nearest folder at or above the working directory
that holds `dvc.yaml` or `params.yaml` (as git and DVC find theirs), so a stage or script gives the
same paths from any subfolder. `dvc.yaml` repeats the paths because DVC needs them literally; tests
check the two agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from matching.matchers.names import ENSEMBLE


def find_root(start: Path | None = None) -> Path:
    if os.environ.get("MATCHING_ROOT"):
        return Path(os.environ["MATCHING_ROOT"]).resolve()
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "dvc.yaml").exists() or (folder / "params.yaml").exists():
            return folder
    return start


@dataclass(frozen=True)
class Layout:
    """The files of a project rooted at `root`."""

    root: Path

    @property
    def params(self) -> Path:
        return self.root / "params.yaml"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def params_checked(self) -> Path:
        """Written by the check_params stage, which every other stage depends on."""
        return self.data / "params_checked.txt"

    @property
    def demo_raw(self) -> Path:
        """Where the generate_demo stage writes the demo archive (`data.raw_dir` of data=demo)."""
        return self.data / "demo"

    def raw_dir(self, configured: str) -> Path:
        """`data.raw_dir` of params.yaml, relative to the root unless absolute."""
        return self.root / configured

    @property
    def prepared(self) -> Path:
        return self.data / "prepared"

    @property
    def train_pairs(self) -> Path:
        return self.prepared / "train_pairs.parquet"

    @property
    def test_pairs(self) -> Path:
        return self.prepared / "test_pairs.parquet"

    @property
    def products(self) -> Path:
        return self.prepared / "products.parquet"

    @property
    def embeddings(self) -> Path:
        return self.data / "embeddings"

    def embedding_file(self, modality: str) -> Path:
        return self.embeddings / f"{modality}.npz"

    @property
    def photo_sets(self) -> Path:
        """Every photo of every product, for the photo-to-photo features."""
        return self.embeddings / "photo_sets.npz"

    @property
    def encode_cache(self) -> Path:
        """Finished chunks of a transformer encoding, so that a killed run resumes; not a DVC output
        (DVC clears outputs before a stage runs), removed when the encoding completes."""
        return self.data / "cache" / "encode"

    @property
    def train_features(self) -> Path:
        return self.data / "features" / "train.parquet"

    @property
    def test_features(self) -> Path:
        return self.data / "features" / "test.parquet"

    def scores_dir(self, name: str) -> Path:
        """A matcher's out-of-fold and test scores; the ensemble's own folder (it reads all of
        data/scores, so it cannot write there)."""
        return self.data / ENSEMBLE if name == ENSEMBLE else self.data / "scores" / name

    def oof_file(self, name: str) -> Path:
        return self.scores_dir(name) / "oof.parquet"

    def test_scores_file(self, name: str) -> Path:
        return self.scores_dir(name) / "test.parquet"

    @property
    def submission(self) -> Path:
        return self.data / "submission.csv"

    @property
    def test_predictions(self) -> Path:
        """Every matcher's and the ensemble's score of each distinct test pair, written by predict."""
        return self.data / "predictions" / "test.parquet"

    def model_dir(self, name: str) -> Path:
        return self.root / "models" / name

    @property
    def ensemble_file(self) -> Path:
        """The fitted ensemble (`matching.matchers.ensemble.save_ensemble`) and `train.submit: auto`'s choice."""
        return self.model_dir(ENSEMBLE) / "ensemble.json"

    @property
    def feature_transforms(self) -> Path:
        """What the features stage fitted on the products (`matching.features.fitted`)."""
        return self.root / "models" / "features"

    @property
    def neighbour_candidates(self) -> Path:
        """The similarities of the pairs the features stage featured, among which a new pair is ranked."""
        return self.feature_transforms / "candidates.parquet"

    def static_model(self, modality: str) -> Path:
        """The distill stage's output: the modality's model distilled into static token vectors
        (model2vec's format), or only `unused.json` when the modality's backend is not static."""
        return self.root / "models" / "static" / modality

    def encoder_dir(self, modality: str) -> Path:
        """What embed_text fitted or used for a text modality: `lexical.npz` (TF-IDF and SVD as plain
        arrays), `transformer.json` (the model and its settings) or `static.json` (the distilled model's
        folder and settings), for scoring new products alike."""
        return self.root / "models" / "encoders" / modality

    @property
    def retrieval_index(self) -> Path:
        """The catalog's nearest-neighbour index (faiss's format), its rows' product ids and settings: data
        built from the embeddings (outside models/, which `predict` reads whole)."""
        return self.data / "retrieval"

    @property
    def catalog_products(self) -> Path:
        """The catalog stage's products table (uncompressed Arrow), mapped by the catalog store."""
        return self.data / "catalog" / "products.arrow"

    @property
    def candidate_model(self) -> Path:
        """train_candidates' model and decision, which `matching-find` decides with (beside the index it
        was trained over; outside models/, which `predict` reads whole)."""
        return self.data / "candidate_model"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    @property
    def catalog_metrics(self) -> Path:
        """train_candidates' out-of-fold figures of catalog matching."""
        return self.metrics / "catalog_matching.json"

    @property
    def data_report(self) -> Path:
        return self.metrics / "data_report.json"

    @property
    def evaluate_dir(self) -> Path:
        """evaluate's dvclive folder: `metrics.json` (the headline), `plots/sklearn/` and `plots/custom/`
        (plot data), `plots/images/` (the figures)."""
        return self.metrics / "evaluate"

    @property
    def evaluate_metrics(self) -> Path:
        return self.evaluate_dir / "metrics.json"

    def evaluate_image(self, name: str) -> Path:
        return self.evaluate_dir / "plots" / "images" / f"{name}.png"

    @property
    def matchers_metrics(self) -> Path:
        return self.metrics / "matchers.json"

    @property
    def ensemble_metrics(self) -> Path:
        return self.metrics / "ensemble.json"

    @property
    def retrieval_metrics(self) -> Path:
        return self.metrics / "retrieval.json"

    @property
    def missing_plot(self) -> Path:
        return self.metrics / "plots" / "missing.csv"

    def training_report_dir(self, name: str) -> Path:
        """A matcher's learning curves (dvclive folders `fold_<k>/`, `curves.csv`) and feature importance."""
        return self.metrics / "training" / name

    def curves_table(self, name: str) -> Path:
        """A matcher's learning curves, a row per fold and read of the inner split (evaluate draws them)."""
        return self.training_report_dir(name) / "curves.csv"

    def fold_log_dir(self, name: str, fold: int) -> Path:
        """dvclive's folder for one fold's curves (`plots/metrics/*.tsv`) and last values (`metrics.json`)."""
        return self.training_report_dir(name) / f"fold_{fold + 1}"

    def importance_table(self, name: str) -> Path:
        """A tree matcher's feature importance (evaluate draws it)."""
        return self.training_report_dir(name) / "importance.csv"


def project() -> Layout:
    """The layout of the project the caller runs in."""
    return Layout(find_root())
