"""The networks' product matrix: one row per product, blocks scaled, missing vectors masked."""

import numpy as np

from matching.io import array_shapes, write_arrays
from matching.matchers.networks import product_blocks


def test_product_blocks_from_lazy_files_match_the_in_memory_build(tmp_path):
    names = {"variantid": np.array([30, 10, 20]), "vectors": np.array([[3, 0], [1, 0], [np.nan, np.nan]], np.float32)}
    photos = {
        "variantid": np.array([10, 40]),
        "main": np.array([[0, 2, 0], [0, 0, 4]], np.float32),
        "extra_count": np.array([1.0, 2.0], np.float32),
    }
    write_arrays(names, tmp_path / "names.npz")
    write_arrays(photos, tmp_path / "photos.npz")
    assert array_shapes(tmp_path / "photos.npz") == {"variantid": (2,), "main": (2, 3), "extra_count": (2,)}
    lazy = {m: np.load(tmp_path / f"{m}.npz") for m in ("names", "photos")}
    blocks = product_blocks(lazy, {m: array_shapes(tmp_path / f"{m}.npz") for m in lazy})
    eager = product_blocks({"names": names, "photos": photos})
    np.testing.assert_array_equal(blocks.values, eager.values)
    assert blocks.widths == [2, 3] and list(blocks.ids) == [10, 20, 30, 40]
    # Rows: 10, 20, 30, 40, unknown. Names scaled by their mean norm (2); 20's NaN vector is masked out.
    np.testing.assert_allclose(blocks.values[:, :2], [[0.5, 0], [0, 0], [1.5, 0], [0, 0], [0, 0]])
    np.testing.assert_array_equal(blocks.mask, [[1, 1], [0, 0], [1, 0], [0, 1], [0, 0]])
    np.testing.assert_allclose(blocks.values[[0, 3], 2:], [[0, 2 / 3, 0], [0, 0, 4 / 3]])
    assert list(blocks.rows(np.array([40, 99]))) == [3, 4]
