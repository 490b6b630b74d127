"""The networks' product matrix (one row per product, blocks scaled, missing vectors masked) and fitting loop."""

import numpy as np
import pandas as pd
import pytest
from torch import nn

from matching.config import Network
from matching.errors import DataError
from matching.features.columns import feature_columns
from matching.io import write_parquet
from matching.matchers.crossfit import InnerSplit
from matching.matchers.fitting import FitOptions, FoldRows, fit_network
from matching.matchers.networks import product_blocks
from matching.matchers.pairwise import feature_matrix
from matching.npz import StoredArrays, write_arrays
from matching.stages.training import read_feature_matrix


def test_product_blocks_from_mapped_files_match_the_in_memory_build(tmp_path):
    names = {"variantid": np.array([30, 10, 20]), "vectors": np.array([[3, 0], [1, 0], [np.nan, np.nan]], np.float32)}
    photos = {
        "variantid": np.array([10, 40]),
        "main": np.array([[0, 2, 0], [0, 0, 4]], np.float32),
        "extra_count": np.array([1.0, 2.0], np.float32),
    }
    write_arrays(names, tmp_path / "names.npz")
    write_arrays(photos, tmp_path / "photos.npz")
    stored = {m: StoredArrays(tmp_path / f"{m}.npz") for m in ("names", "photos")}
    assert {k: v.shape for k, v in stored["photos"].items()} == {"variantid": (2,), "main": (2, 3), "extra_count": (2,)}
    assert not stored["photos"]["main"].flags.writeable  # mapped from the file, not copied
    blocks = product_blocks(stored)
    eager = product_blocks({"names": names, "photos": photos})
    np.testing.assert_array_equal(blocks.values, eager.values)
    assert blocks.widths == [2, 3] and list(blocks.ids) == [10, 20, 30, 40]
    # Rows: 10, 20, 30, 40, unknown. Names scaled by their mean norm (2); 20's NaN vector is masked out.
    np.testing.assert_allclose(blocks.values[:, :2], [[0.5, 0], [0, 0], [1.5, 0], [0, 0], [0, 0]])
    np.testing.assert_array_equal(blocks.mask, [[1, 1], [0, 0], [1, 0], [0, 1], [0, 0]])
    np.testing.assert_allclose(blocks.values[[0, 3], 2:], [[0, 2 / 3, 0], [0, 0, 4 / 3]])
    assert list(blocks.rows(np.array([40, 99]))) == [3, 4]


def test_product_blocks_of_files_in_one_sorted_order_equal_those_of_shuffled_files():
    rng = np.random.default_rng(0)
    ids = np.arange(10, 60, 10)
    names = {"variantid": ids, "vectors": rng.random((5, 3)).astype(np.float32)}
    photos = {"variantid": ids, "main": rng.random((5, 2)).astype(np.float32)}
    names["vectors"][1] = np.nan
    in_order = product_blocks({"names": names, "photos": photos})
    order = np.array([3, 0, 4, 2, 1])
    shuffled = product_blocks({"names": {k: v[order] for k, v in names.items()}, "photos": photos})
    np.testing.assert_allclose(in_order.values, shuffled.values, rtol=1e-6)
    np.testing.assert_array_equal(in_order.mask, shuffled.mask)
    assert in_order.mask[1, 0] == 0 and not in_order.values[1, :3].any()


def toy_fold(n: int, held_out: int) -> tuple:
    """Alternating targets of `n` pairs, an inner split of a fifth, the last `held_out` rows the fold scored."""
    target = (np.arange(n) % 2).astype(np.float32)
    inner = InnerSplit(np.arange(n), np.arange(n) + n, "pairs", 0.2, seed=0)
    train, valid = np.arange(n - held_out), np.arange(n - held_out, n)
    return target, inner, train, valid, *inner(train, 0)


def test_early_stopping_reads_the_inner_split_every_validate_every_pairs_and_keeps_the_best_weights():
    target, inner, train, valid, fit, stop = toy_fold(200, held_out=50)
    settings = Network(
        "cpu",
        0.01,
        0.0,
        batch_size=10,
        validate_every=25,
        max_epochs=10,
        patience=3,
        min_delta=0.0,
        hidden=4,
        out_dim=4,
        dropout=0.0,
    )
    model = nn.Linear(1, 1)
    # PR-AUC of the inner split at each read: the best is the 2nd, then 3 reads without a better one.
    quality = iter([0.3, 0.9, 0.5, 0.6, 0.4, 0.95])
    weights_at_read = []

    def predict(rows: np.ndarray) -> np.ndarray:
        if len(weights_at_read) == 5:  # after the stop: the held-out fold, by the kept weights
            assert np.array_equal(rows, valid)
            return np.zeros(len(rows))
        weights_at_read.append(model.weight.item())
        noise = np.random.default_rng(1).random(len(rows))
        return np.where(np.random.default_rng(0).random(len(rows)) < next(quality), target[rows], noise)

    curves: list = []
    rows = FoldRows(train, valid, 0, inner, target)
    fit_network(model, lambda rows: model.weight.sum() * len(rows), predict, rows, settings, 0, curves)
    parts = -(-len(fit) // 25)  # reads an epoch
    assert [row["epoch"] for row in curves[0]] == [round(k / parts, 4) for k in range(1, 6)]
    assert model.weight.item() == weights_at_read[1] != weights_at_read[-1]
    assert len(stop) > 0


def test_stored_arrays_map_what_write_arrays_wrote_and_refuse_a_compressed_file(tmp_path):
    arrays = {"ids": np.arange(5), "matrix": np.arange(12, dtype=np.float32).reshape(4, 3), "empty": np.zeros((0, 2))}
    write_arrays(arrays, tmp_path / "a.npz")
    stored = StoredArrays(tmp_path / "a.npz")
    assert sorted(stored) == sorted(arrays)
    for name, value in arrays.items():
        np.testing.assert_array_equal(stored[name], value)
        assert stored[name].dtype == value.dtype and stored[name].shape == value.shape
    np.savez_compressed(tmp_path / "b.npz", x=np.arange(3))
    with pytest.raises(DataError, match=r"b\.npz: x\.npy is compressed; rerun the stage"):
        StoredArrays(tmp_path / "b.npz")


def test_an_epoch_arranged_on_the_host_is_cut_into_batches_in_the_arranged_order():
    target, inner, train, valid, fit, _ = toy_fold(100, held_out=20)
    settings = Network("cpu", 0.01, 0.0, 8, 10**6, 1, 1, 0.0, hidden=4, out_dim=4, dropout=0.0)
    model = nn.Linear(1, 1)
    batches, arranged = [], []

    def arrange(order: np.ndarray) -> np.ndarray:
        arranged.append(np.sort(order)[::-1])  # any reordering of the epoch's rows: here descending
        return arranged[-1]

    def batch_loss(rows: np.ndarray):
        batches.append(rows)
        return model.weight.sum() * len(rows)

    fit_network(
        model,
        batch_loss,
        lambda rows: target[rows],
        FoldRows(train, valid, 0, inner, target),
        settings,
        0,
        [],
        FitOptions(host_rows=True, arrange=arrange),
    )
    assert [len(rows) for rows in batches] == [8] * (len(fit) // 8) + ([len(fit) % 8] if len(fit) % 8 else [])
    np.testing.assert_array_equal(np.concatenate(batches), arranged[0])
    np.testing.assert_array_equal(np.sort(arranged[0]), np.sort(fit))


def test_the_feature_matrix_read_a_column_at_a_time_equals_the_frames_copy_byte_for_byte(tmp_path):
    rng = np.random.default_rng(0)
    n = 1000
    frame = pd.DataFrame(
        {
            "variantid1": np.arange(n),
            "variantid2": np.arange(n) + n,
            "target": rng.integers(0, 2, n).astype(np.int8),
            "category": rng.choice(["a", "b"], n),
            "wide": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),  # float64, rounded to float32
            "narrow": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)).astype(np.float32),
            "count": rng.integers(0, 1 << 30, n),
        }
    )
    write_parquet(frame, tmp_path / "train.parquet")
    read = read_feature_matrix(tmp_path / "train.parquet")
    assert read.columns == ["wide", "narrow", "count"] == feature_columns(frame)
    expected = feature_matrix(frame, read.columns)
    assert read.values.dtype == np.float32 and np.isnan(read.values).sum() > 0
    assert read.values.tobytes() == expected.tobytes()
