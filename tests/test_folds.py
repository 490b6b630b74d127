import numpy as np
import pytest

from matching.errors import DataError
from matching.matchers.crossfit import InnerSplit
from matching.matchers.folds import make_folds, pair_components, product_disjoint_folds


def test_pairs_sharing_a_product_share_a_component():
    left = np.array([1, 2, 10, 20, 3])
    right = np.array([2, 3, 11, 10, 4])
    label = pair_components(left, right)
    assert label[0] == label[1] == label[4]  # 1-2, 2-3, 3-4 chain
    assert label[2] == label[3]  # 10-11, 20-10
    assert label[0] != label[2]


def test_no_product_sits_in_two_folds(demo_tables):
    train = demo_tables["train"].to_pandas()
    fold = product_disjoint_folds(train.variantid1.to_numpy(), train.variantid2.to_numpy(), 4, seed=0)
    assert set(fold) == {0, 1, 2, 3}
    owner = {}
    for a, b, f in zip(train.variantid1, train.variantid2, fold):
        for product in (a, b):
            assert owner.setdefault(product, f) == f


def test_too_few_groups_for_the_folds_is_a_clear_error():
    with pytest.raises(DataError, match="train.n_folds"):
        product_disjoint_folds(np.array([1, 2]), np.array([2, 3]), 5, seed=0)


def test_pair_folding_deals_pairs_evenly_and_unknown_foldings_are_refused():
    left, right = np.arange(100), np.arange(100) + 1  # one chain: a single product group
    fold = make_folds(left, right, 4, seed=0, folding="pairs")
    assert np.bincount(fold).tolist() == [25, 25, 25, 25]
    with pytest.raises(DataError, match="train.n_folds"):
        make_folds(left, right, 4, seed=0, folding="products")
    with pytest.raises(ValueError, match="unknown folding 'random'"):
        make_folds(left, right, 4, seed=0, folding="random")


def test_the_inner_split_for_early_stopping_shares_no_product_with_the_rows_fitted_on():
    rng = np.random.default_rng(0)
    left, right = rng.integers(0, 3000, 2000), rng.integers(3000, 6000, 2000)
    fold = make_folds(left, right, 5, seed=0)
    inner = InnerSplit(left, right, "products", share=0.1, seed=0)
    for number in range(5):
        train = np.flatnonzero(fold != number)
        fit, stop = inner(train, number)
        assert sorted(np.concatenate([fit, stop]).tolist()) == train.tolist()
        assert 0.03 * len(train) < len(stop) <= 0.1 * len(train)
        stopping = set(left[stop]) | set(right[stop])
        assert not stopping & (set(left[fit]) | set(right[fit])), "a product sits on both sides of the inner split"
        assert not set(stop) & set(np.flatnonzero(fold == number)), "early stopping read the scored fold"
        again = inner(train, number)
        assert np.array_equal(again[1], stop)
    fit, stop = InnerSplit(left, right, "pairs", share=0.2, seed=0)(np.arange(2000))
    assert 300 < len(stop) < 500 and len(fit) + len(stop) == 2000
