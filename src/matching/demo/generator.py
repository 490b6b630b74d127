"""The demo archive: five tables in exactly the competition's schema, offline.

The demo is built to be hard to tell apart, like the real pairs: a *family* is one kind of
product of one brand in one category; its *items* differ in colour, size or model number; an item
is listed by sellers once or twice with reworded names, reordered and partly missing attributes
and other photos. Positive pairs are the two listings of one item; negatives pair listings of
sibling items (near misses) or of other families in the same level-2 category.

Every random draw is a numpy array and the product files are written in row groups of
65,536 products, so the real volumes (`-S demo=full`: 2,252,569 products, 1,168,516
train and 49,620 test pairs, several GB of photo vectors) fit in a few GiB.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from matching.errors import DataError

LEVEL2 = {
    "Электроника": ["Смартфон", "Наушники", "Планшет", "Зарядное устройство"],
    "Одежда": ["Футболка", "Куртка", "Джинсы", "Платье"],
    "Обувь": ["Кроссовки", "Ботинки", "Сандалии", "Туфли"],
    "Дом и сад": ["Кастрюля", "Полотенце", "Подушка", "Светильник"],
    "Детские товары": ["Конструктор", "Кукла", "Коляска", "Пазл"],
    "Красота и здоровье": ["Шампунь", "Крем для лица", "Зубная щетка", "Парфюм"],
    "Бытовая техника": ["Пылесос", "Чайник", "Миксер", "Утюг"],
    "Спорт и отдых": ["Гантели", "Коврик для йоги", "Велосипед", "Рюкзак"],
    "Строительство и ремонт": ["Дрель", "Шуруповерт", "Краска", "Перфоратор"],
    "Продукты питания": ["Кофе", "Чай", "Шоколад", "Орехи"],
    "Аптека": ["Витамины", "Пластырь", "Термометр", "Тонометр"],
    "Товары для животных": ["Корм для кошек", "Лежанка", "Игрушка для собак", "Наполнитель"],
    "Книги": ["Роман", "Учебник", "Раскраска", "Энциклопедия"],
    "Автотовары": ["Видеорегистратор", "Автомагнитола", "Щетки стеклоочистителя", "Масло моторное"],
    "Мебель": ["Стул", "Стол", "Полка", "Кресло"],
    "Канцелярские товары": ["Ручка", "Тетрадь", "Маркер", "Папка"],
    "Ювелирные украшения": ["Кольцо", "Серьги", "Браслет", "Цепочка"],
    "Аксессуары": ["Чехол", "Ремень", "Кошелек", "Очки"],
    "Бытовая химия": ["Средство для стирки", "Гель для посуды", "Освежитель", "Чистящее средство"],
    "Хобби и творчество": ["Набор для вышивания", "Краски акриловые", "Пряжа", "Холст"],
}
SYNONYMS = {
    "Смартфон": "Телефон",
    "Наушники": "Гарнитура",
    "Кроссовки": "Кеды",
    "Кастрюля": "Кастрюлька",
    "Пылесос": "Робот-пылесос",
    "Рюкзак": "Ранец",
    "Дрель": "Дрель-шуруповерт",
    "Чехол": "Кейс",
    "Стул": "Табурет",
    "Ручка": "Ручка шариковая",
    "Корм для кошек": "Корм кошачий",
}
BRANDS = [
    "Funny Ducks",
    "Samsung",
    "Xiaomi",
    "Tefal",
    "Bosch",
    "Lego",
    "Nike",
    "Adidas",
    "Philips",
    "Redmond",
    "Makita",
    "Zara",
    "Gloria Jeans",
    "Ikea",
    "Pilot",
    "Erich Krause",
    "Sokolov",
    "Purina",
    "Castrol",
    "Sony",
    "Polaris",
    "Huawei",
    "Baby Born",
    "Nivea",
    "Colgate",
    "Jacobs",
]
COLOURS = [
    "черный",
    "белый",
    "красный",
    "синий",
    "зеленый",
    "бежевый",
    "серый",
    "светло-розовый",
    "желтый",
    "фиолетовый",
    "коричневый",
    "голубой",
]
ADJECTIVES = ["новый", "прочный", "удобный", "компактный", "стильный", "легкий", "универсальный", "мягкий"]
MATERIALS = ["пластик", "металл", "хлопок", "полиэстер", "стекло", "дерево", "кожа", "резина"]
COUNTRIES = ["Россия", "Китай", "Германия", "Турция", "Вьетнам", "Италия"]
# Latent spread of sibling items around their family, and of one item's listings around the item:
# with 64 and 128 dimensions, listings of one item must not sit much closer than siblings do.
SIBLING_SPREAD = 0.45
LISTING_NOISE = 1.25
EMOJI = ["🔥", "✅", "⭐", "👍", "🎁", "💯"]


ROWS_PER_GROUP = 65_536  # products a parquet row group (and a random stream)
POSITIVE_SHARE = 0.48  # of all pairs, as in the real train file
SIBLING_SHARE = 0.8  # of the negatives: a sibling item (a near miss) rather than another family
LETTERS = np.array(list("ABCDEFGHKMNPRSTXZ"))
NOUNS = np.array([nouns for nouns in LEVEL2.values()], dtype=object)  # (level2, 4)
NOUN_SYNONYMS = np.vectorize(lambda noun: SYNONYMS.get(noun, noun), otypes=[object])(NOUNS)
CATEGORY_JSON = np.array(
    [
        [
            json.dumps(
                {"1": "EPG", "2": level2, "3": noun, "4": f"{noun} {'базовый' if index % 2 == 0 else 'премиум'}"},
                ensure_ascii=False,
            )
            for index, noun in enumerate(nouns)
        ]
        for level2, nouns in LEVEL2.items()
    ],
    dtype=object,
)
# A colour as sellers write it: as is, capitalised, or with one е spelt ё.
COLOUR_SPELLINGS = np.array([[c, c.capitalize(), c.replace("е", "ё", 1)] for c in COLOURS], dtype=object)


@dataclass(frozen=True)
class DemoSize:
    n_train_pairs: int
    n_test_pairs: int
    n_products: int | None = None  # None: 1.2 products a pair

    @property
    def n_pairs(self) -> int:
        return self.n_train_pairs + self.n_test_pairs

    @property
    def products(self) -> int:
        return self.n_products or max(16, int(1.2 * self.n_pairs))


@dataclass
class Catalogue:
    """Items (one row each) and their listings (the products): every array is indexed by position."""

    family: np.ndarray
    level2: np.ndarray
    noun: np.ndarray
    brand: np.ndarray
    material: np.ndarray
    country: np.ndarray
    adjective: np.ndarray
    colour: np.ndarray
    size: np.ndarray
    model: np.ndarray  # strings
    name_vec: np.ndarray  # (items, 64) float32
    photo_vec: np.ndarray  # (items, 128) float32
    listing_item: np.ndarray  # item of each listing
    first_listing: np.ndarray  # first listing of each item
    listing_count: np.ndarray  # listings of each item (1 or 2)


def check_size(size: DemoSize) -> None:
    low, high = int(np.ceil(2 * POSITIVE_SHARE * size.n_pairs)) + 2, 2 * size.n_pairs
    if size.n_pairs < 4 or not low <= size.products <= high:
        raise DataError(
            f"params.yaml: demo.n_products is {size.products} for {size.n_pairs} pairs; "
            f"use between {low} and {high} (or null for 1.2 products a pair)"
        )


def build_catalogue(rng: np.random.Generator, n_items: int, n_double: int) -> Catalogue:
    """Families of 2 to 4 sibling items that share category, brand, noun and a nearby latent
    vector and differ in one trait; `n_double` items, drawn at random, are listed twice."""
    family_sizes = rng.integers(2, 5, size=n_items // 2 + 2)
    family = np.repeat(np.arange(len(family_sizes)), family_sizes)[:n_items]
    n_families = int(family[-1]) + 1
    variant = np.arange(n_items) - np.concatenate([[0], np.cumsum(family_sizes)])[family]

    def per_family(high: int) -> np.ndarray:
        return rng.integers(high, size=n_families)[family]

    level2, noun, brand = per_family(len(LEVEL2)), per_family(4), per_family(len(BRANDS))
    material, country = per_family(len(MATERIALS)), per_family(len(COUNTRIES))
    adjective, base_colour = per_family(len(ADJECTIVES)), per_family(len(COLOURS))
    base_size = (rng.integers(1, 20, size=n_families) * 50)[family]
    letters = LETTERS[rng.integers(len(LETTERS), size=(n_families, 2))]
    digits = rng.integers(100, 9999, size=n_families)
    base_model = np.array([f"{a}{b}-{d}" for (a, b), d in zip(letters.tolist(), digits.tolist())], dtype=object)
    # A sibling differs from the family's base item in one trait only, as real near misses do.
    changed = np.where(variant > 0, rng.integers(3, size=n_items), -1)
    colour = np.where(changed == 0, (base_colour + variant) % len(COLOURS), base_colour)
    size = base_size + np.where(changed == 1, variant * 50, 0)
    model = base_model[family] + np.where(changed == 2, variant.astype(str).astype(object), "")
    # Siblings sit close to the family centre: near misses look alike in every modality.
    name_vec = rng.standard_normal((n_families, 64), dtype=np.float32)[family]
    name_vec += SIBLING_SPREAD * rng.standard_normal((n_items, 64), dtype=np.float32)
    photo_vec = rng.standard_normal((n_families, 128), dtype=np.float32)[family]
    photo_vec += SIBLING_SPREAD * rng.standard_normal((n_items, 128), dtype=np.float32)

    listing_count = np.ones(n_items, dtype=np.int64)
    listing_count[rng.choice(n_items, n_double, replace=False)] = 2
    first_listing = np.concatenate([[0], np.cumsum(listing_count)[:-1]])
    return Catalogue(
        family,
        level2,
        noun,
        brand,
        material,
        country,
        adjective,
        colour,
        size,
        model,
        name_vec,
        photo_vec,
        np.repeat(np.arange(n_items), listing_count),
        first_listing,
        listing_count,
    )


def sample_pairs(rng: np.random.Generator, cat: Catalogue, n_pairs: int) -> pd.DataFrame:
    """Every listing sits in at least one pair, as in the real archive: the two listings of a
    twice-listed item make a positive; once-listed items, ordered by category, pair up with their
    neighbour (a sibling or another family's item); the remaining pairs are extra negatives drawn
    at random."""
    double = np.flatnonzero(cat.listing_count == 2)
    positives = np.column_stack([cat.first_listing[double], cat.first_listing[double] + 1])
    single = np.flatnonzero(cat.listing_count == 1)
    # Once-listed items seek a sibling (sorted next to their family) or any item of their level-2
    # category (sorted at random after all families), SIBLING_SHARE of them the former.
    seek = np.where(rng.random(len(single)) < SIBLING_SHARE, cat.family[single], cat.family[-1] + 1)
    single = single[np.lexsort((rng.random(len(single)), seek, cat.level2[single]))]
    neighbours = cat.first_listing[single[: len(single) // 2 * 2].reshape(-1, 2)]

    n_extra = max(0, n_pairs - len(positives) - len(neighbours))
    draws = 2 * n_extra + 100  # some draws repeat a pair or meet the same item
    item = cat.listing_item[rng.integers(len(cat.listing_item), size=draws)]
    family_start = np.searchsorted(cat.family, cat.family)  # families are contiguous runs of items
    family_size = np.bincount(cat.family)[cat.family]
    by_level2 = np.argsort(cat.level2, kind="stable")
    level2_start = np.searchsorted(cat.level2[by_level2], np.arange(len(LEVEL2)))
    level2_size = np.bincount(cat.level2, minlength=len(LEVEL2))
    sibling = family_start[item] + (rng.random(draws) * family_size[item]).astype(np.int64)
    cousin = by_level2[
        level2_start[cat.level2[item]] + (rng.random(draws) * level2_size[cat.level2[item]]).astype(np.int64)
    ]
    other = np.where(rng.random(draws) < SIBLING_SHARE, sibling, cousin)
    left = cat.first_listing[item] + (rng.random(draws) * cat.listing_count[item]).astype(np.int64)
    right = cat.first_listing[other] + (rng.random(draws) * cat.listing_count[other]).astype(np.int64)
    extra = np.column_stack([left, right])[other != item]

    pairs = np.concatenate([positives, neighbours, extra])
    target = np.concatenate([np.ones(len(positives), np.int64), np.zeros(len(neighbours) + len(extra), np.int64)])
    key = np.minimum(pairs[:, 0], pairs[:, 1]) * len(cat.listing_item) + np.maximum(pairs[:, 0], pairs[:, 1])
    _, first = np.unique(key, return_index=True)
    kept = np.sort(first)[:n_pairs]  # the positives and neighbours first, then extras in draw order
    kept = kept[rng.permutation(len(kept))]
    return pd.DataFrame({"left": pairs[kept, 0], "right": pairs[kept, 1], "target": target[kept]})


def add_dirt(rng: np.random.Generator, train: pd.DataFrame, test: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Known dirt: a few train pairs repeated in reversed order, some with the opposite label,
    and a few test pairs that also sit in train (in either orientation)."""
    n_dup = max(2, len(train) // 250)
    dup = train.sample(n_dup, random_state=seed).rename(columns={"left": "right", "right": "left"})
    flip = rng.random(n_dup) < 0.18
    dup.loc[flip, "target"] = 1 - dup.loc[flip, "target"]
    leak = test.sample(max(1, len(test) // 50), random_state=seed + 1)
    swap = rng.random(len(leak)) < 0.5
    leak.loc[swap, ["left", "right"]] = leak.loc[swap, ["right", "left"]].to_numpy()
    return pd.concat([train, dup, leak], ignore_index=True).sample(frac=1.0, random_state=seed)


def _chosen(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.where(mask, values, "")


def _weights(size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A weight as grams ('250 г') and as kilograms ('0.25 кг'), one string per value."""
    unique, inverse = np.unique(size, return_inverse=True)
    grams = np.array([f"{s} г" for s in unique.tolist()], dtype=object)[inverse]
    kilos = np.array([f"{s / 1000:g} кг" for s in unique.tolist()], dtype=object)[inverse]
    return grams, kilos


def _shuffled_rows(rng: np.random.Generator, parts: np.ndarray) -> list[list]:
    order = np.argsort(rng.random(parts.shape), axis=1)
    return np.take_along_axis(parts, order, axis=1).tolist()


def listing_names(rng: np.random.Generator, cat: Catalogue, item: np.ndarray) -> list[str]:
    n = len(item)
    nouns = np.where(
        rng.random(n) < 0.3, NOUN_SYNONYMS[cat.level2[item], cat.noun[item]], NOUNS[cat.level2[item], cat.noun[item]]
    )
    grams, kilos = _weights(cat.size[item])
    tail = np.column_stack(
        [
            np.array(BRANDS, dtype=object)[cat.brand[item]],
            _chosen(rng.random(n) < 0.5, cat.model[item]),
            _chosen(rng.random(n) < 0.6, np.array(COLOURS, dtype=object)[cat.colour[item]]),
            _chosen(rng.random(n) < 0.6, np.where(rng.random(n) < 0.5, grams, kilos)),
            _chosen(rng.random(n) < 0.4, np.array(ADJECTIVES, dtype=object)[cat.adjective[item]]),
        ]
    )
    lower = (rng.random(n) < 0.15).tolist()
    names = [
        " ".join([noun] + [part for part in row if part])
        for noun, row in zip(nouns.tolist(), _shuffled_rows(rng, tail))
    ]
    return [name.lower() if low else name for name, low in zip(names, lower)]


def listing_attributes(rng: np.random.Generator, cat: Catalogue, item: np.ndarray) -> list[str]:
    n = len(item)
    model = cat.model[item]
    noun = NOUNS[cat.level2[item], cat.noun[item]]
    grams, kilos = _weights(cat.size[item])
    colours = COLOUR_SPELLINGS[cat.colour[item], (np.searchsorted([0.15, 0.25], rng.random(n), side="right") + 1) % 3]
    # Sellers write one value in several ways: the same item need not give equal strings.
    second_colour = np.where(
        rng.random(n) < 0.15, np.array(COLOURS, dtype=object)[rng.integers(len(COLOURS), size=n)], np.full(n, None)
    )
    values = {
        "Бренд": np.array(BRANDS, dtype=object)[cat.brand[item]],
        "Цвет товара": colours,
        "Модель": np.where(rng.random(n) < 0.25, np.char.lower(model.astype(str)).astype(object), model),
        "Артикул": model + "-" + rng.integers(10, 99, size=n).astype(str).astype(object),
        "Вес товара, г": np.where(rng.random(n) < 0.75, cat.size[item].astype(str).astype(object), kilos),
        "Материал": np.array(MATERIALS, dtype=object)[cat.material[item]],
        "Страна-изготовитель": np.array(COUNTRIES, dtype=object)[cat.country[item]],
        "Тип": noun,
        "Комплектация": noun + ", инструкция",
    }
    keys = np.array(list(values), dtype=object)
    kept = rng.random((n, len(keys))) > 0.25
    columns = np.column_stack([np.where(kept[:, j], values[k], None) for j, k in enumerate(keys)])
    order = np.argsort(rng.random(kept.shape), axis=1)
    shuffled_keys = keys[order].tolist()
    shuffled_values = np.take_along_axis(columns, order, axis=1).tolist()
    out = []
    for row_keys, row_values, second in zip(shuffled_keys, shuffled_values, second_colour.tolist()):
        mapping = {k: [v] for k, v in zip(row_keys, row_values) if v is not None}
        if second is not None and "Цвет товара" in mapping:
            mapping["Цвет товара"].append(second)
        out.append(json.dumps(mapping, ensure_ascii=False))
    return out


def listing_descriptions(rng: np.random.Generator, cat: Catalogue, item: np.ndarray) -> list[str | None]:
    n = len(item)
    brand = np.array(BRANDS, dtype=object)[cat.brand[item]].tolist()
    noun = NOUNS[cat.level2[item], cat.noun[item]].tolist()
    adjective = np.array(ADJECTIVES, dtype=object)[cat.adjective[item]].tolist()
    colour = np.array(COLOURS, dtype=object)[cat.colour[item]].tolist()
    material = np.array(MATERIALS, dtype=object)[cat.material[item]].tolist()
    country = np.array(COUNTRIES, dtype=object)[cat.country[item]].tolist()
    model, size = cat.model[item].tolist(), cat.size[item].tolist()
    sentences = np.array(
        [
            [f"{no} от бренда {b} &mdash; {a} выбор на каждый день." for no, b, a in zip(noun, brand, adjective)],
            [f"Цвет: {c}." for c in colour],
            [f"Материал: {m}&nbsp;высокого качества." for m in material],
            [f"Модель {m}, вес {s}&nbsp;г." for m, s in zip(model, size)],
            [f"Производство: {c}." for c in country],
            ["Гарантия &quot;качества&quot; от производителя."] * n,
        ],
        dtype=object,
    ).T
    kept = rng.random(sentences.shape) > 0.3
    kept[~kept.any(axis=1), 0] = True
    as_list = (rng.random(n) < 0.5).tolist()
    emoji = np.where(rng.random(n) < 0.4, np.array(EMOJI, dtype=object)[rng.integers(len(EMOJI), size=n)], "").tolist()
    missing = (rng.random(n) < 0.12).tolist()
    out: list[str | None] = []
    for row, keep, bullet, mark, none in zip(sentences.tolist(), kept.tolist(), as_list, emoji, missing):
        if none:
            out.append(None)
            continue
        parts = [s for s, k in zip(row, keep) if k]
        body = "<ul>" + "".join(f"<li>{s}</li>" for s in parts) + "</ul>" if bullet else "<br/>".join(parts)
        out.append(f"<p>{mark} {body}  </p>")
    return out


def _vectors(flat: np.ndarray, dim: int) -> pa.ListArray:
    """Rows of a (n, dim) matrix as a list<float32> column, without a Python object a row."""
    offsets = pa.array(np.arange(0, flat.size + 1, dim, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(flat.reshape(-1)))


def _photos(rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    # ResNet features after ReLU are non-negative.
    return np.abs(centres + LISTING_NOISE * rng.standard_normal(centres.shape, dtype=np.float32))


def product_batches(
    cat: Catalogue,
    listings: np.ndarray,
    ids: np.ndarray,
    seed: int,
    rows: int = ROWS_PER_GROUP,
    numbers: Iterable[int] | None = None,
) -> Iterator[dict[str, pa.RecordBatch]]:
    """The three product files, `rows` listings at a time in file order (or only the batches `numbers`);
    each batch draws from its own random stream, so a batch needs nothing from the ones before it."""
    for number in range(-(-len(listings) // rows)) if numbers is None else numbers:
        start = number * rows
        rng = np.random.default_rng([seed, 2, number])
        listing = listings[start : start + rows]
        item = cat.listing_item[listing]
        n = len(item)
        name_vec = cat.name_vec[item] + LISTING_NOISE * rng.standard_normal((n, 64), dtype=np.float32)
        name_vec *= 4.0 / np.linalg.norm(name_vec, axis=1, keepdims=True)
        main = _photos(rng, cat.photo_vec[item])
        n_extra = np.where(rng.random(n) > 0.35, rng.integers(0, 17, size=n), 0)
        extra = _photos(rng, cat.photo_vec[np.repeat(item, n_extra)])
        main_column = pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), _vectors(main, 128))
        extra_offsets = pa.array(np.concatenate([[0], np.cumsum(n_extra)]).astype(np.int32))
        extra_column = pa.ListArray.from_arrays(extra_offsets, _vectors(extra, 128), mask=pa.array(n_extra == 0))
        batch_ids = pa.array(ids[listing])
        yield {
            "attributes": pa.record_batch(
                {
                    "variantid": batch_ids,
                    "categories": pa.array(CATEGORY_JSON[cat.level2[item], cat.noun[item]], pa.string()),
                    "characteristic_attributes_mapping": pa.array(listing_attributes(rng, cat, item), pa.string()),
                }
            ),
            "text_and_bert": pa.record_batch(
                {
                    "variantid": batch_ids,
                    "name": pa.array(listing_names(rng, cat, item), pa.string()),
                    "description": pa.array(listing_descriptions(rng, cat, item), pa.string()),
                    "name_bert_64": _vectors(name_vec, 64),
                }
            ),
            "resnet": pa.record_batch(
                {
                    "variantid": batch_ids,
                    "main_pic_embeddings_resnet_v1": main_column,
                    "pic_embeddings_resnet_v1": extra_column,
                }
            ),
        }


def plan(size: DemoSize, seed: int) -> tuple[Catalogue, dict[str, pa.Table], np.ndarray, np.ndarray]:
    """The catalogue, the two pair tables, the listings in file order and the product ids."""
    check_size(size)
    rng = np.random.default_rng(seed)
    n_products = size.products
    n_double = int(POSITIVE_SHARE * size.n_pairs)
    cat = build_catalogue(rng, n_products - n_double, n_double)
    pairs = sample_pairs(rng, cat, size.n_pairs)
    train, test = pairs.iloc[: size.n_train_pairs], pairs.iloc[size.n_train_pairs :].reset_index(drop=True)
    train = add_dirt(rng, train, test, seed)
    # Large random ids like the real ones, so that nothing can lean on row positions.
    ids = np.int64(10**8) + rng.choice(10 * n_products, n_products, replace=False).astype(np.int64)
    listings = rng.permutation(n_products)  # product files in an order unrelated to the pairs
    tables = {
        "train": pa.table(
            {
                "variantid1": ids[train.left.to_numpy()],
                "variantid2": ids[train.right.to_numpy()],
                "target": train.target.to_numpy(np.int64),
            }
        ),
        "test": pa.table({"variantid1": ids[test.left.to_numpy()], "variantid2": ids[test.right.to_numpy()]}),
    }
    return cat, tables, listings, ids


def generate(size: DemoSize, seed: int) -> dict[str, pa.Table]:
    """The five competition tables in memory, deterministic for a given size and seed (small sizes)."""
    cat, tables, listings, ids = plan(size, seed)
    batches: dict[str, list[pa.RecordBatch]] = {}
    for batch in product_batches(cat, listings, ids, seed):
        for name, records in batch.items():
            batches.setdefault(name, []).append(records)
    return {**tables, **{name: pa.Table.from_batches(records) for name, records in batches.items()}}
