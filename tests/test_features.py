"""Pair features on hand-made products: joins by id, distances, categories, attributes, names."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from matching.data.cleaning import unordered_key
from matching.features.arrays import vector_distances
from matching.features.columns import KEYS, feature_columns
from matching.features.groups import FEATURE_GROUPS
from matching.features.neighbours import SCORES, SavedPairs, best_of_others, neighbour_group, ranked_alone
from matching.features.pairs import pair_features
from matching.features.parsing import UNITS
from matching.features.products import product_tables

ALL = list(FEATURE_GROUPS)


def products_frame():
    rows = [
        (
            10,
            "Смартфон Samsung черный",
            {"Бренд": ["Samsung"], "Цвет товара": ["черный"], "Модель": ["A1"]},
            ("EPG", "Электроника", "Смартфоны", "Android"),
        ),
        (
            20,
            "Samsung смартфон черный",
            {"Цвет товара": ["черный"], "Бренд": ["Samsung"], "Модель": ["A2"]},
            ("EPG", "Электроника", "Смартфоны", "iOS"),
        ),
        (30, "Кастрюля Tefal", {"Бренд": ["Tefal"]}, ("EPG", "Дом и сад", "Посуда", None)),
    ]
    return pd.DataFrame(
        {
            "variantid": [r[0] for r in rows],
            "name": [r[1] for r in rows],
            "description": [None, "описание", None],
            "attributes": [json.dumps(r[2], ensure_ascii=False) for r in rows],
            **{f"category_{i + 1}": [r[3][i] for r in rows] for i in range(4)},
        }
    )


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
    features = pair_features(pairs, product_tables(products, embeddings, None, 1000), ALL)
    assert len(features) == 3 and features[["variantid1", "variantid2"]].equals(pairs[["variantid1", "variantid2"]])
    assert features.loc[0, "emb_names_vectors_cos"] == pytest.approx(0.0)
    assert np.isnan(features.loc[1, "emb_names_vectors_cos"])  # 30 has no name vector
    assert features.loc[2, feature_columns(features)].isna().all()  # 99 is unknown everywhere
    assert features.loc[2, "category"] == "unknown"
    assert features.loc[0, "category"] == "Электроника"


def test_category_attribute_and_name_features_by_hand():
    products = products_frame()
    pairs = pd.DataFrame({"variantid1": [10, 10, 10], "variantid2": [20, 30, 10]})
    features = pair_features(pairs, product_tables(products, {}, None, 1000), ALL)
    first, second, same = features.iloc[0], features.iloc[1], features.iloc[2]
    assert (first.cat_2_equal, first.cat_3_equal, first.cat_4_equal) == (1, 1, 0)
    assert second.cat_2_equal == 0 and np.isnan(second.cat_4_equal)
    # 10 vs 20: keys {Бренд, Цвет, Модель} on both, values equal on two of three.
    assert (first.attr_shared_keys, first.attr_key_jaccard) == (3, 1.0)
    assert first.attr_equal_value_share == pytest.approx(2 / 3)
    # 10 vs 30: one shared key (Бренд) out of three, with different values.
    assert (second.attr_shared_keys, second.attr_key_jaccard, second.attr_equal_value_share) == (
        1,
        pytest.approx(1 / 3),
        0,
    )
    assert first.text_name_token_set_ratio == pytest.approx(1.0) and first.text_name_token_jaccard == pytest.approx(1.0)
    assert first.text_name_ratio < 1.0
    assert same.text_name_ratio == pytest.approx(1.0) and second.text_name_token_jaccard == 0.0


def offers():
    rows = [
        (
            1,
            "Samsung Galaxy S21 SM-G991B 128 GB черный",
            {"Бренд": ["Samsung"], "Цвет товара": ["Черный"], "Вес товара, г": ["171"]},
        ),
        (
            2,
            "Смартфон Samsung SMG991B 128GB",
            {"Бренд": ["samsung"], "Цвет товара": ["чёрный"], "Вес товара, г": ["171"]},
        ),
        (
            3,
            "Samsung Galaxy S22 SM-S901B 256 GB белый",
            {"Бренд": ["Samsung"], "Цвет товара": ["белый"], "Вес товара, г": ["0.2 кг"]},
        ),
    ]
    return pd.DataFrame(
        {
            "variantid": [r[0] for r in rows],
            "name": [r[1] for r in rows],
            "description": [None] * 3,
            "attributes": [json.dumps(r[2], ensure_ascii=False) for r in rows],
            "category_1": ["EPG"] * 3,
            "category_2": ["Электроника"] * 3,
            "category_3": ["Смартфоны"] * 3,
            "category_4": ["Android"] * 3,
        }
    )


def test_codes_numbers_colour_and_brand_by_hand():
    tables = product_tables(offers(), {}, None, 1000)
    pairs = pd.DataFrame({"variantid1": [1, 1], "variantid2": [2, 3]})
    same, other = (
        pair_features(pairs, tables, ["codes", "attributes"]).iloc[0],
        pair_features(pairs, tables, ["codes", "attributes"]).iloc[1],
    )
    # SM-G991B and SMG991B are one code once separators go; 128 GB is a memory size, not a code.
    assert same.code_shared >= 1 and same.code_conflict == 0 and same.code_in_other_text == 1.0
    assert other.code_conflict == 1 and other.code_shared == 0
    assert same.attr_memory_relative_difference == 0.0
    assert other.attr_memory_relative_difference == pytest.approx(0.5)
    assert same.attr_weight_relative_difference == 0.0  # "171" under a key ending in ", г"
    assert other.attr_weight_relative_difference == pytest.approx((200 - 171) / 200)
    assert same.attr_colour_match == 1.0 and other.attr_colour_match == 0.0  # Черный = чёрный
    assert same.attr_brand_equal == 1.0 and same.attr_brand_in_other_name == 1.0
    assert set(c.split("_")[0] for c in feature_columns(pair_features(pairs, tables, ["codes"]))) == {"code"}


def named_products(names):
    return pd.DataFrame(
        {
            "variantid": np.arange(1, len(names) + 1),
            "name": names,
            "description": [None] * len(names),
            "attributes": [None] * len(names),
            "category_1": ["x"] * len(names),
            "category_2": ["y"] * len(names),
            "category_3": [None] * len(names),
            "category_4": [None] * len(names),
        }
    )


def test_near_miss_codes_and_numbers_in_names_by_hand():
    tables = product_tables(
        named_products(
            [
                "epson t020201 ink",
                "epson t020202 ink",
                "iogear gbu421w6 adapter",
                "iogear gbu421 adapter 2.0",
                "tree maker version 16 deluxe",
                "tree maker deluxe 11.2",
                "adobe cs3 3.0 upgrade",
                "adobe cs3 upgrade",
            ]
        ),
        {},
        None,
        1000,
    )
    pairs = pd.DataFrame({"variantid1": [1, 3, 5, 7, 1], "variantid2": [2, 4, 6, 8, 5]})
    f = pair_features(pairs, tables, ["codes", "text"])
    # t020201 / t020202: one letter apart, neither begins the other; gbu421 begins gbu421w6.
    assert f.code_closest_different[0] == pytest.approx(6 / 7) and f.code_one_begins_other[0] == 0
    assert f.code_one_begins_other[1] == 1
    assert np.isnan(f.code_closest_different[4])  # product 5 has no code
    # Numbers in names: 16 against 11.2 share nothing; cs3 and 3.0 are both 3.
    assert (f.text_name_numbers_jaccard[2], f.text_name_numbers_unmatched_max[2]) == (0, 1)
    assert (f.text_name_numbers_jaccard[3], f.text_name_numbers_unmatched_max[3]) == (1, 0)


def test_best_of_others_by_hand():
    product = np.array([1, 1, 1, 2, 3, 3])
    score = np.array([0.9, 0.5, 0.9, 0.3, np.nan, 0.2])
    other, rank = best_of_others(product, score)
    np.testing.assert_allclose(other, [0.9, 0.9, 0.9, np.nan, 0.2, np.nan])
    np.testing.assert_array_equal(rank, [1, 3, 1, 1, 2, 1])  # ties share rank 1; NaN ranks last


def test_neighbours_rank_a_pair_among_all_its_products_pairs_without_targets():
    tables = product_tables(
        named_products(["acme drill 500", "acme drill 500 w", "acme saw 12", "zeta lamp"]), {}, None, 1000
    )
    pairs = pd.DataFrame({"variantid1": [1, 1, 1, 4], "variantid2": [2, 3, 4, 3], "target": [1, 0, 0, 0]})
    f = pair_features(pairs, tables, ["text", "neighbours"])
    # Product 1's best candidate is 2: rank 1 with a positive gap; the others rank below it.
    assert f.nbr_text_name_char_tfidf_cos_rank1.tolist()[:3] == [1, 2, 3]
    assert f.nbr_text_name_char_tfidf_cos_gap1[0] > 0 > f.nbr_text_name_char_tfidf_cos_gap1[1]
    assert f.nbr_pairs1.tolist() == [3, 3, 3, 2] and f.nbr_pairs2.tolist() == [1, 2, 2, 2]  # either side counts
    # Targets play no part; a pair's candidates are the rows given, so dropping one changes the gaps.
    shuffled = pair_features(pairs.assign(target=[0, 1, 1, 0]), tables, ["text", "neighbours"])
    pd.testing.assert_frame_equal(f.drop(columns="target"), shuffled.drop(columns="target"))
    fewer = pair_features(pairs.iloc[1:], tables, ["text", "neighbours"])
    assert fewer.nbr_text_name_char_tfidf_cos_rank1.iloc[0] == 1


def random_pairs(rng, n_pairs, n_products):
    """Pairs of distinct products, each unordered pair once, with similarities holding ties and NaN."""
    left, right = rng.integers(0, n_products, (2, n_pairs * 2))
    keep = left != right
    key = pd.MultiIndex.from_arrays([np.minimum(left, right), np.maximum(left, right)])
    keep &= ~key.duplicated()
    pairs = pd.DataFrame({"variantid1": left[keep], "variantid2": right[keep]}).head(n_pairs)
    for name in SCORES[:2]:
        score = rng.integers(0, 6, len(pairs)) / 5  # few values: many ties
        pairs[name] = np.where(rng.random(len(pairs)) < 0.1, np.nan, score).astype(np.float32)
    return pairs


def test_a_pair_ranked_alone_among_saved_pairs_gets_its_features_among_all_of_them_whatever_comes_with_it():
    rng = np.random.default_rng(0)
    saved = random_pairs(rng, 400, 60)
    ids = lambda frame: [frame[k].to_numpy(np.int64) for k in KEYS]  # noqa: E731
    columns = lambda frame: {name: frame[name].to_numpy() for name in SCORES[:2]}  # noqa: E731
    together = pd.DataFrame(neighbour_group(ids(saved), np.ones(len(saved), bool), columns(saved)))
    # Saved pairs scored anew, any subset in either orientation: the features they had among all of them.
    subset = saved.sample(57, random_state=1)
    swapped = subset.rename(columns={"variantid1": "variantid2", "variantid2": "variantid1"})
    for part, flip in ((subset, False), (swapped, True)):
        alone = pd.DataFrame(ranked_alone(ids(part), np.ones(len(part), bool), columns(part), SavedPairs(saved)))
        expected = together.iloc[subset.index].reset_index(drop=True)
        if flip:  # the sides trade places
            expected = expected.rename(columns=lambda c: c.replace("1", "#").replace("2", "1").replace("#", "2"))
        pd.testing.assert_frame_equal(alone[sorted(alone)], expected[sorted(alone)])
    # New pairs (products known or not): each gets what it would get as the one pair added to the saved ones.
    new = random_pairs(np.random.default_rng(2), 40, 70)
    new = new[~unordered_key(*ids(new)).isin(unordered_key(*ids(saved)))].reset_index(drop=True)
    alone = pd.DataFrame(ranked_alone(ids(new), np.ones(len(new), bool), columns(new), SavedPairs(saved)))
    for row in range(len(new)):
        grown = pd.concat([saved, new.iloc[[row]]], ignore_index=True)
        one = pd.DataFrame(neighbour_group(ids(grown), np.ones(len(grown), bool), columns(grown))).iloc[-1]
        pd.testing.assert_series_equal(alone.iloc[row], one, check_names=False)
    assert (alone.nbr_pairs1 == 1).any() and (alone.nbr_pairs1 > 3).any()  # unknown and busy products both met
    # A saved pair whose products changed since: itself with its new similarities, in place of its saved ones.
    changed = saved.iloc[:30].copy()
    changed[list(SCORES[:2])] = np.random.default_rng(3).integers(0, 6, (30, 2)) / 5
    alone = pd.DataFrame(ranked_alone(ids(changed), np.ones(30, bool), columns(changed), SavedPairs(saved)))
    for row in range(30):
        replaced = saved.copy()
        replaced.iloc[row] = changed.iloc[row]
        one = pd.DataFrame(neighbour_group(ids(replaced), np.ones(len(saved), bool), columns(replaced))).iloc[row]
        pd.testing.assert_series_equal(alone.iloc[row], one, check_names=False)


def test_photo_sets_statistics_by_hand():
    unit = np.eye(128, dtype=np.float32)
    sets = {
        "variantid": np.array([1, 2, 3]),
        "starts": np.array([2, 0, 4]),
        "counts": np.array([2, 2, 0]),
        "photos": np.stack([unit[0], unit[2], unit[0], unit[1]]).astype(np.float16),
        "has_main": np.array([True, True, False]),
    }
    tables = product_tables(offers(), {}, sets, 1000)
    pairs = pd.DataFrame({"variantid1": [1, 1], "variantid2": [2, 3]})
    features = pair_features(pairs, tables, ["photos"])
    first = features.iloc[0]
    # Cosines of {e0, e1} against {e0, e2}: 1, 0, 0, 0.
    assert (first.photo_cos_max, first.photo_cos_min, first.photo_cos_mean) == (1.0, 0.0, 0.25)
    assert first.photo_cos_std == pytest.approx(np.std([1, 0, 0, 0]))
    assert first.photo_main_vs_other_max == 0.0 and first.photo_count_absdiff == 0
    assert np.isnan(features.iloc[1].photo_cos_max) and features.iloc[1].photo_count_absdiff == 2


def test_features_in_chunks_of_pairs_on_any_thread_count_equal_features_in_one_go(monkeypatch, demo_tables):
    from matching.features import arrays

    attributes = demo_tables["attributes"].to_pandas()
    text = demo_tables["text_and_bert"].to_pandas()[["variantid", "name", "description"]]
    levels = [json.loads(c) for c in attributes.categories]
    products = attributes.drop(columns="categories").rename(columns={"characteristic_attributes_mapping": "attributes"})
    products = products.assign(**{f"category_{i}": [c.get(str(i)) for c in levels] for i in range(1, 5)}).merge(text)
    pairs = demo_tables["train"].to_pandas().head(60)
    tables = product_tables(products, {}, None, 1000)
    whole = pair_features(pairs, tables, ALL)
    monkeypatch.setattr(arrays, "PAIR_CHUNK", 7)
    chunked = pair_features(pairs, tables, ALL)
    pd.testing.assert_frame_equal(whole, chunked)
    monkeypatch.setattr(arrays, "THREADS", 3)  # over PAIR_CHUNK pairs: chunks of 3 pairs, three at a time
    pd.testing.assert_frame_equal(whole, pair_features(pairs, tables, ALL))
    monkeypatch.setattr(arrays, "PAIR_CHUNK", 100)  # under it: three chunks in three threads
    pd.testing.assert_frame_equal(whole, pair_features(pairs, tables, ALL))
    assert whole["code_shared"].notna().all() and (whole["attr_shared_keys"] > 0).any()


def test_code_in_other_text_is_the_larger_share_of_codes_found_in_the_other_text():
    products = (
        offers()
        .iloc[:3]
        .assign(
            variantid=[1, 2, 3],
            name=["Роутер GBU421 X100", "Роутер GBU421W6", "Роутер без артикула"],
            description=[None, "новый", "подходит к GBU421"],
            attributes=["{}"] * 3,
        )
    )
    tables = product_tables(products, {}, None, 1000)
    pairs = pd.DataFrame({"variantid1": [1, 2, 1, 1], "variantid2": [2, 1, 3, 99]})
    found = pair_features(pairs, tables, ["codes"])["code_in_other_text"].tolist()
    # 1 -> 2: gbu421 is inside gbu421w6, x100 is not (1/2); 2 -> 1: gbu421w6 is not in 1's text (0).
    # 1 -> 3: gbu421 is in 3's description, x100 is not; 3 has no codes. 99 is unknown.
    assert found[:3] == [0.5, 0.5, 0.5] and np.isnan(found[3])


# The definitions the Arrow (RE2) scans of product_tables follow, written with Python's `re`, which has
# the lookarounds RE2 lacks: a code is a word run holding a digit, trimmed of - . / at its ends.
PYTHON_CODE = re.compile(r"(?<![\w])(?=[\w\-./]*\d)[\w][\w\-./]*[\w](?![\w])")
PYTHON_NUMBER_UNIT = re.compile(
    r"(\d+(?:[.,]\d+)?)\s*(" + "|".join(sorted(map(re.escape, UNITS), key=len, reverse=True)) + r")(?![\w])"
)
TRICKY_NAMES = [
    "кабель usb-c/lightning 1.5 м, 2шт.",
    "--ab12-- .x9. __q_7 a 1,5 кг 200\u00a0мл",  # trimmed ends, underscores, a no-break space
    "mah5000 5000mah 10 mm 3 m2 4 gb/8 gb 12.5",  # a unit must end a word; a decimal is no code
    "ноутбук hp 15s-fq2023ur 8 гб ssd 256 гб 2.4 ггц",
    "мягкая игрушка медведь 50 см",
    "",
    "sm-g991b sm-g991b 2021 21.5 1/2 x-5 мм",
]


def python_codes(text):
    found = (re.sub(r"[\-./_\s]", "", c) for c in PYTHON_CODE.findall(text) if not re.fullmatch(r"\d+[.,]\d+", c))
    return " ".join(sorted({c for c in found if len(c) >= 3 and not c.isdigit() or len(c) >= 4}))


def python_numbers(text):
    first = {}
    for number, unit in PYTHON_NUMBER_UNIT.findall(text):
        quantity, factor = UNITS[unit]
        first.setdefault(quantity, np.float32(float(number.replace(",", ".")) * factor))
    return first


def test_codes_and_numbers_follow_their_python_regex_definitions():
    tables = product_tables(named_products(TRICKY_NAMES), {}, None, 1000)
    for row, name in enumerate(TRICKY_NAMES):
        assert tables.code_strings[row] == python_codes(name), name
        found = {q: v[row] for q, v in tables.numbers.items() if not np.isnan(v[row])}
        assert found == python_numbers(name), name
    # usb-c holds no digit; "2шт" is both a code and a count.
    assert tables.code_strings[0] == "2шт" and tables.numbers["length"][0] == 1500.0 and tables.numbers["count"][0] == 2


def test_attributes_parsed_in_worker_processes_are_numbered_as_in_one_pass(monkeypatch):
    import pyarrow as pa

    from matching import parallel
    from matching.features import parsing

    mappings = pa.array(
        [
            '{"Цвет": ["Красный"], "Вес": ["1,5"]}',
            None,
            '{"Вес": ["2"], "Бренд": ["Acme"]}',
            "{}",
            '{"Цвет": ["синий", "Ёлка"]}',
            '{"Бренд": ["Acme"], "Объём": ["3"]}',
            '{"Вес": ["1,5"]}',
        ]
    )
    whole = parsing.parse_attributes(mappings)  # one chunk, in this process
    assert whole[1].tolist() == ["Цвет", "Вес", "Бренд", "Объём"]  # keys numbered by first appearance
    assert whole[2].tolist() == ["красный", "1,5", "2", "acme", "елка | синий", "3"]
    assert whole[0]["product"].tolist() == [0, 0, 2, 2, 4, 5, 5, 6] and whole[0]["number"].iloc[1] == 1.5
    assert whole[3].to_pylist()[:2] == ["красный 1,5", ""]
    monkeypatch.setattr(parsing, "ATTRIBUTE_CHUNK", 2)  # four chunks in two worker processes
    monkeypatch.setattr(parallel, "THREADS", 2)
    chunked = parsing.parse_attributes(mappings)
    pd.testing.assert_frame_equal(chunked[0], whole[0])
    assert chunked[1].tolist() == whole[1].tolist() and chunked[2].tolist() == whole[2].tolist()
    assert chunked[3].equals(whole[3])


@pytest.mark.parametrize("threads", [1, 2])
def test_codes_found_in_row_chunks_side_by_side_are_the_codes_of_one_pass(monkeypatch, threads):
    import pyarrow as pa

    from matching import parallel
    from matching.features import parsing

    texts = pa.array(
        [
            "Phone XR-200 black 64GB",
            None,
            "Cable 2.5 m, art. 1234-56",
            "",
            "A1 b22 C333 12345 0.75",
            "Model xr200 / XR-200",
            "9.99 rub",
            "SKU_99ab",
            "no codes here",
            "RTX 4090 24GB GDDR6X",
        ]
    )
    one_pass = parsing.parse_codes(texts)
    monkeypatch.setattr(parsing, "CODE_CHUNK", 3)
    monkeypatch.setattr(parallel, "THREADS", threads)
    chunked = parsing.parse_codes(texts)
    pd.testing.assert_frame_equal(chunked[0].frame, one_pass[0].frame)
    np.testing.assert_array_equal(chunked[0].starts, one_pass[0].starts)
    assert chunked[1].tolist() == one_pass[1].tolist() and chunked[2].tolist() == one_pass[2].tolist()
    assert one_pass[1][0] == "64GB XR200" and one_pass[1][2] == "123456"  # separators gone, decimals left out
