"""Every file the pipeline reads or writes, in one place.

Paths are relative to the repository root, which is where `dvc repro` runs the stages.
`dvc.yaml` repeats them because DVC needs them literally; tests check the two agree.
"""
from pathlib import Path

ROOT = Path(".")
PARAMS = ROOT / "params.yaml"

DATA = ROOT / "data"
DEMO_RAW = DATA / "demo"

PREPARED = DATA / "prepared"
TRAIN_PAIRS = PREPARED / "train_pairs.parquet"
TEST_PAIRS = PREPARED / "test_pairs.parquet"
PRODUCTS = PREPARED / "products.parquet"

EMBEDDINGS = DATA / "embeddings"
TEXT_MODALITIES = ("attributes", "descriptions")
MODALITIES = ("attributes", "descriptions", "names", "photos")
PHOTO_SETS = EMBEDDINGS / "photo_sets.npz"
# Finished chunks of a transformer encoding, so that a killed run resumes; not a DVC output
# (DVC clears outputs before a stage runs), removed when the encoding completes.
ENCODE_CACHE = DATA / "cache" / "encode"  # every photo of every product, for photo-to-photo features

FEATURES = DATA / "features"
TRAIN_FEATURES = FEATURES / "train.parquet"
TEST_FEATURES = FEATURES / "test.parquet"

# Out-of-fold and test scores: one folder per matcher, and the ensemble's own folder (it reads
# all of data/scores, so it cannot write there).
SCORES = DATA / "scores"
ENSEMBLE = DATA / "ensemble"
SUBMISSION = DATA / "submission.csv"

MODELS = ROOT / "models"

METRICS = ROOT / "metrics"
DATA_REPORT = METRICS / "data_report.json"
EVALUATE_METRICS = METRICS / "evaluate.json"
MATCHERS_METRICS = METRICS / "matchers.json"
ENSEMBLE_METRICS = METRICS / "ensemble.json"
PER_CATEGORY = METRICS / "per_category.json"
PLOTS = METRICS / "plots"
MISSING_PLOT = PLOTS / "missing.csv"
PR_CURVE = PLOTS / "precision_recall.csv"
ENSEMBLE_NAME = "ensemble"


def embedding_file(modality: str) -> Path:
    return EMBEDDINGS / f"{modality}.npz"


def model_dir(model: str) -> Path:
    return MODELS / model


def scores_dir(name: str) -> Path:
    return ENSEMBLE if name == ENSEMBLE_NAME else SCORES / name


def oof_file(name: str) -> Path:
    return scores_dir(name) / "oof.parquet"


def test_scores_file(name: str) -> Path:
    return scores_dir(name) / "test.parquet"


def training_report_dir(name: str) -> Path:
    """Small per-matcher plot data kept in git: learning curves, feature importance."""
    return METRICS / "training" / name


def learning_curve_file(name: str) -> Path:
    return training_report_dir(name) / "learning.csv"


IMPORTANCE_PLOT = training_report_dir("lightgbm") / "importance.csv"
