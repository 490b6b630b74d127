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

FEATURES = DATA / "features"
TRAIN_FEATURES = FEATURES / "train.parquet"
TEST_FEATURES = FEATURES / "test.parquet"

OOF = DATA / "oof"
SUBMISSION = DATA / "submission.csv"

MODELS = ROOT / "models"

METRICS = ROOT / "metrics"
DATA_REPORT = METRICS / "data_report.json"
TRAIN_METRICS = METRICS / "train.json"
EVALUATE_METRICS = METRICS / "evaluate.json"
PER_CATEGORY = METRICS / "per_category.json"
PLOTS = METRICS / "plots"
MISSING_PLOT = PLOTS / "missing.csv"
PR_CURVE = PLOTS / "precision_recall.csv"
IMPORTANCE_PLOT = PLOTS / "importance.csv"


def embedding_file(modality: str) -> Path:
    return EMBEDDINGS / f"{modality}.npz"


def model_dir(model: str) -> Path:
    return MODELS / model


def oof_file(model: str) -> Path:
    return OOF / f"{model}.parquet"


def test_scores_file(model: str) -> Path:
    return OOF / f"{model}_test.parquet"
