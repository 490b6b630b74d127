"""Pair features on hand-made products: joins by id, distances, categories, attributes, names."""
import json

import numpy as np
import pandas as pd
import pytest

from matching.features import attribute_long_table, feature_columns, pair_features, vector_distances


def products_frame():
    rows = [
        (10, "Смартфон Samsung черный", {"Бренд": ["Samsung"], "Цвет товара": ["черный"], "Модель": ["A1"]},
         ("EPG", "Электроника", "Смартфоны", "Android")),
        (20, "Samsung смартфон черный", {"Цвет товара": ["черный"], "Бренд": ["Samsung"], "Модель": ["A2"]},
         ("EPG", "Электроника", "Смартфоны", "iOS")),
        (30, "Кастрюля Tefal", {"Бренд": ["Tefal"]}, ("EPG", "Дом и сад", "Посуда", None)),
    ]
    return pd.DataFrame({
        "variantid": [r[0] for r in rows],
        "name": [r[1] for r in rows],
        "description": [None, "описание", None],
        "attributes": [json.dumps(r[2], ensure_ascii=False) for r in rows],
        **{f"category_{i + 1}": [r[3][i] for r in rows] for i in range(4)},
    })


def embeddings_for(ids, vectors):
    return {"variantid": np.array(ids, dtype=np.int64), "vectors": np.array(vectors, dtype=np.float32)}


def test_vector_distances_by_hand():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [np.nan, 0.0]])
    b = np.array([[0.0, 1.0], [2.0, 2.0], [1.0, 0.0]])
    d = vector_distances(a, b)
    np.testing.assert_allclose(d["cos"][:2], [0.0, 1.0])
    np.testing.assert_allclose(d["euclidean"][:2], [np.sqrt(2), np.sqrt(2)])
    np.testing.assert_allclose(d["manhattan"][:2], [2.0, 2.0])
    assert np.isnan(d["cos"][2]) and np.isnan(d["euclidean"][2])


def test_features_join_by_id_and_tolerate_missing_products():
    products = products_frame()
    # The modality file lists products in another order and lacks product 30 entirely.
    embeddings = {"names": embeddings_for([20, 10], [[0.0, 1.0], [1.0, 0.0]])}
    pairs = pd.DataFrame({"variantid1": [10, 10, 99], "variantid2": [20, 30, 10], "target": [1, 0, 0]})
    features = pair_features(pairs, products, embeddings, attribute_long_table(products["attributes"]))
    assert len(features) == 3 and features[["variantid1", "variantid2"]].equals(pairs[["variantid1", "variantid2"]])
    assert features.loc[0, "names_vectors_cos"] == pytest.approx(0.0)
    assert np.isnan(features.loc[1, "names_vectors_cos"])           # 30 has no name vector
    assert features.loc[2, feature_columns(features)].isna().all()  # 99 is unknown everywhere
    assert features.loc[2, "category"] == "unknown"
    assert features.loc[0, "category"] == "Электроника"


def test_category_attribute_and_name_features_by_hand():
    products = products_frame()
    pairs = pd.DataFrame({"variantid1": [10, 10, 10], "variantid2": [20, 30, 10]})
    features = pair_features(pairs, products, {}, attribute_long_table(products["attributes"]))
    first, second, same = features.iloc[0], features.iloc[1], features.iloc[2]
    assert (first.category_2_equal, first.category_3_equal, first.category_4_equal) == (1, 1, 0)
    assert second.category_2_equal == 0 and np.isnan(second.category_4_equal)
    # 10 vs 20: keys {Бренд, Цвет, Модель} on both, values equal on two of three.
    assert (first.attr_shared_keys, first.attr_key_jaccard) == (3, 1.0)
    assert first.attr_equal_value_share == pytest.approx(2 / 3)
    # 10 vs 30: one shared key (Бренд) out of three, with different values.
    assert (second.attr_shared_keys, second.attr_key_jaccard, second.attr_equal_value_share) == (1, pytest.approx(1 / 3), 0)
    assert first.name_token_set_ratio == pytest.approx(1.0) and first.name_token_jaccard == pytest.approx(1.0)
    assert first.name_ratio < 1.0
    assert same.name_ratio == pytest.approx(1.0) and second.name_token_jaccard == 0.0
