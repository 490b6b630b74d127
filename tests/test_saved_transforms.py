"""What the stages fit, saved as plain arrays, parquet and JSON, loads back to the same transform (that no loader
unpickles: tests/test_trust.py)."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression

from matching.encoders.lexical import LexicalEncoder, fit_lexical, lexical_encoder
from matching.encoders.tfidf import TfidfVocabulary, fit_tfidf_vocabulary
from matching.features.fitted import FeatureTransforms
from matching.features.pairs import pair_features
from matching.features.products import product_tables
from matching.matchers import ensemble
from matching.npz import read_arrays, write_arrays

TEXTS = [
    "Смартфон Samsung Galaxy A52 128 ГБ черный",
    "Кастрюля Tefal 3 л нержавеющая сталь",
    "наушники xiaomi redmi buds 3 pro",
    "Смартфон Samsung Galaxy A72 256 ГБ синий",
    "Чехол для iPhone 13 силикон",
    "кабель usb-c 1 м",
    None,
    "",
]
UNSEEN = ["Смартфон Samsung Galaxy S21 черный", "кастрюля эмалированная 5 л", "ёлка 😀 новогодняя", None]


@pytest.mark.parametrize(("analyzer", "ngrams"), [("char_wb", (2, 4)), ("word", (1, 1))])
def test_tfidf_vocabulary_saved_as_plain_arrays_transforms_alike(tmp_path, analyzer, ngrams):
    vocabulary = fit_tfidf_vocabulary(pa.array(TEXTS), analyzer, ngrams, max_features=1000)
    write_arrays(vocabulary.to_arrays("v_"), tmp_path / "vocabulary.npz")
    stored = read_arrays(tmp_path / "vocabulary.npz")
    assert all(array.dtype.kind in "iuf" for array in stored.values())  # numbers only, nothing to unpickle
    loaded = TfidfVocabulary.from_arrays(stored, "v_")
    assert (loaded.analyzer, loaded.ngrams) == (analyzer, ngrams)
    for texts in (TEXTS, UNSEEN):
        expected, got = vocabulary.transform(texts), loaded.transform(texts)
        assert (expected != got).nnz == 0 and expected.nnz > 0


def test_lexical_encoder_saved_and_loaded_encodes_new_texts_alike(tmp_path):
    texts = [t for t in TEXTS if t]
    fitted: list[LexicalEncoder] = []
    vectors = lexical_encoder(dim=6, ngram_min=2, ngram_max=4, max_features=1000, seed=0, fitted=fitted)(texts)
    assert len(fitted) == 1
    np.testing.assert_array_equal(vectors, fitted[0].encode(texts))  # the stage's vectors are the saved encoder's
    fitted[0].save(tmp_path / "lexical.npz")
    loaded = LexicalEncoder.load(tmp_path / "lexical.npz")
    unseen = [t or "" for t in UNSEEN]
    np.testing.assert_array_equal(loaded.encode(unseen), fitted[0].encode(unseen))
    assert loaded.encode(unseen).shape == (4, 6) and np.abs(loaded.encode(unseen)[0]).sum() > 0
    # Fitted on texts with no n-gram at all: every vector is zeros, before and after saving.
    empty = fit_lexical(["", " "], dim=4, ngram_min=2, ngram_max=4, max_features=10, seed=0)
    empty.save(tmp_path / "empty.npz")
    assert not LexicalEncoder.load(tmp_path / "empty.npz").encode(["abc"]).any()


def test_saved_stacker_weights_give_the_stackers_probabilities():
    rng = np.random.default_rng(3)
    target = rng.integers(0, 2, 300)
    scores = np.clip(target[:, None] * 0.4 + rng.random((300, 3)) * 0.6, 0.01, 0.99)
    _, weights = ensemble.stacking(scores, target, np.repeat([0, 1, 2], 100))
    reference = LogisticRegression(C=1.0).fit(ensemble.logit(scores), target)
    expected = reference.predict_proba(ensemble.logit(scores[:20]))[:, 1]
    np.testing.assert_allclose(ensemble.stacked(json.loads(json.dumps(weights)), scores[:20]), expected, rtol=1e-10)


def test_saved_rank_reference_scores_a_row_alike_whatever_is_scored_with_it(tmp_path):
    rng = np.random.default_rng(4)
    oof = pd.DataFrame(rng.random((200, 2)).round(2), columns=["a", "b"]).assign(target=0, fold=0)
    oof_scores, fitted, reference = ensemble.combine(oof, ["a", "b"], "rank_mean")
    ensemble.save_ensemble(tmp_path, fitted, reference)
    fitted, reference = ensemble.load_ensemble(tmp_path)
    # Out-of-fold rows ranked against the reference get their rank_mean (ties averaged, as rankdata does).
    np.testing.assert_allclose(ensemble.ensemble_scores(fitted, reference, oof[["a", "b"]].to_numpy()), oof_scores)
    new = rng.random((30, 2))
    alone = [ensemble.ensemble_scores(fitted, reference, new[i : i + 1])[0] for i in range(len(new))]
    np.testing.assert_allclose(ensemble.ensemble_scores(fitted, reference, new), alone)
    assert 0 < min(alone) and max(alone) < 1


def catalog():
    rows = [
        (1, "Samsung Galaxy S21 SM-G991B 128 GB черный", {"Бренд": ["Samsung"], "Цвет": ["черный"]}, "Смартфоны"),
        (2, "Смартфон Samsung SMG991B 128GB", {"Бренд": ["samsung"], "Цвет": ["чёрный"]}, "Смартфоны"),
        (3, "Samsung Galaxy S22 SM-S901B 256 GB белый", {"Бренд": ["Samsung"], "Память": ["256"]}, "Смартфоны"),
        (4, "Кастрюля Tefal 3 л", {"Бренд": ["Tefal"], "Объем, л": ["3"]}, "Посуда"),
        (5, "Кастрюля Tefal 5 л", {"Бренд": ["Tefal"], "Объем, л": ["5"]}, "Посуда"),
    ]
    return pd.DataFrame(
        {
            "variantid": [r[0] for r in rows],
            "name": [r[1] for r in rows],
            "description": ["описание товара", None, "смартфон", None, "кастрюля из стали"],
            "attributes": [json.dumps(r[2], ensure_ascii=False) for r in rows],
            "category_1": ["EPG"] * 5,
            "category_2": [r[3] for r in rows],
            "category_3": [None] * 5,
            "category_4": [None] * 5,
        }
    )


GROUPS = ["embeddings", "category", "attributes", "text", "codes", "neighbours"]


def test_features_from_saved_transforms_equal_the_fitted_ones_and_new_products_use_them(tmp_path):
    products = catalog()
    pairs = pd.DataFrame({"variantid1": [1, 1, 4, 2], "variantid2": [2, 3, 5, 4]})
    fitted = product_tables(products, {}, None, 1000)
    fitted.transforms.save(tmp_path)
    loaded = FeatureTransforms.load(tmp_path)
    again = product_tables(products, {}, None, 1000, transforms=loaded)
    pd.testing.assert_frame_equal(pair_features(pairs, again, GROUPS), pair_features(pairs, fitted, GROUPS))
    assert loaded.top_keys.query("category == 'Посуда'")["key"].tolist() == ["Бренд", "Объем, л"]
    # Two new products alone: frequencies and top keys are the fitted catalog's, not recomputed from two rows.
    new = product_tables(products.iloc[[3, 1]], {}, None, 1000, transforms=loaded)
    assert new.category_frequency["2"].tolist() == pytest.approx([0.6, 0.4])  # Смартфоны (product 2), Посуда
    new_pair = pair_features(pd.DataFrame({"variantid1": [2], "variantid2": [4]}), new, GROUPS)
    same_columns = "^(cat|attr|text|code)_"  # neighbours rank a pair among the file's pairs: not compared here
    np.testing.assert_array_equal(
        new_pair.filter(regex=same_columns).to_numpy(),
        pair_features(pairs.iloc[[3]], fitted, GROUPS).filter(regex=same_columns).to_numpy(),
    )
