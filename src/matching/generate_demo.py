"""Stage `generate_demo`: five parquet files in exactly the competition's schema, offline.

The demo is built to be hard to tell apart, like the real pairs: a *family* is one kind of
product of one brand in one category; its *items* differ in colour, size and model number; each
item is listed by sellers one to three times with reworded names, reordered and partly missing
attributes and other photos. Positive pairs are two listings of one item; negatives are listings
of sibling items (near misses) or of other families in the same level-2 category.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from matching import paths
from matching.io import atomic_path, load_params, run_stage

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
SYNONYMS = {"Смартфон": "Телефон", "Наушники": "Гарнитура", "Кроссовки": "Кеды", "Кастрюля": "Кастрюлька",
            "Пылесос": "Робот-пылесос", "Рюкзак": "Ранец", "Дрель": "Дрель-шуруповерт", "Чехол": "Кейс",
            "Стул": "Табурет", "Ручка": "Ручка шариковая", "Корм для кошек": "Корм кошачий"}
BRANDS = ["Funny Ducks", "Samsung", "Xiaomi", "Tefal", "Bosch", "Lego", "Nike", "Adidas", "Philips",
          "Redmond", "Makita", "Zara", "Gloria Jeans", "Ikea", "Pilot", "Erich Krause", "Sokolov",
          "Purina", "Castrol", "Sony", "Polaris", "Huawei", "Baby Born", "Nivea", "Colgate", "Jacobs"]
COLOURS = ["черный", "белый", "красный", "синий", "зеленый", "бежевый", "серый", "светло-розовый",
           "желтый", "фиолетовый", "коричневый", "голубой"]
ADJECTIVES = ["новый", "прочный", "удобный", "компактный", "стильный", "легкий", "универсальный", "мягкий"]
MATERIALS = ["пластик", "металл", "хлопок", "полиэстер", "стекло", "дерево", "кожа", "резина"]
COUNTRIES = ["Россия", "Китай", "Германия", "Турция", "Вьетнам", "Италия"]
# Latent spread of sibling items around their family, and of one item's listings around the item:
# with 64 and 128 dimensions, listings of one item must not sit much closer than siblings do.
SIBLING_SPREAD = 0.45
LISTING_NOISE = 1.25
EMOJI = ["🔥", "✅", "⭐", "👍", "🎁", "💯"]


@dataclass(frozen=True)
class DemoSize:
    n_train_pairs: int
    n_test_pairs: int


def _model_code(rng: np.random.Generator) -> str:
    letters = "ABCDEFGHKMNPRSTXZ"
    return "".join(rng.choice(list(letters), 2)) + "-" + str(rng.integers(100, 9999))


def _build_catalogue(rng: np.random.Generator, n_items: int) -> pd.DataFrame:
    """Items grouped into families; siblings share category, brand, noun and a nearby latent vector."""
    level2_names = list(LEVEL2)
    rows = []
    family = 0
    while len(rows) < n_items:
        level2 = level2_names[rng.integers(len(level2_names))]
        noun_index = int(rng.integers(4))
        noun = LEVEL2[level2][noun_index]
        family_name_vec = rng.normal(size=64)
        family_photo_vec = rng.normal(size=128)
        brand = BRANDS[rng.integers(len(BRANDS))]
        material = MATERIALS[rng.integers(len(MATERIALS))]
        country = COUNTRIES[rng.integers(len(COUNTRIES))]
        adjective = ADJECTIVES[rng.integers(len(ADJECTIVES))]
        base_size = int(rng.integers(1, 20)) * 50
        base = {"colour": COLOURS[rng.integers(len(COLOURS))], "size": base_size, "model": _model_code(rng)}
        for variant in range(int(rng.integers(2, 5))):
            # A sibling differs from the family's base item in one trait only, as real near misses do.
            traits = dict(base)
            changed = ("colour", "size", "model")[rng.integers(3)] if variant else None
            if changed == "colour":
                traits["colour"] = COLOURS[(COLOURS.index(base["colour"]) + variant) % len(COLOURS)]
            elif changed == "size":
                traits["size"] = base_size + variant * 50
            elif changed == "model":
                traits["model"] = f"{base['model']}{variant}"
            rows.append({
                "family": family,
                "level2": level2,
                "level3": f"{noun}",
                "level4": f"{noun} {'базовый' if noun_index % 2 == 0 else 'премиум'}",
                "noun": noun,
                "adjective": adjective,
                "brand": brand,
                "material": material,
                "country": country,
                **traits,
                # Siblings sit close to the family centre: near misses look alike in every modality.
                "name_vec": family_name_vec + SIBLING_SPREAD * rng.normal(size=64),
                "photo_vec": family_photo_vec + SIBLING_SPREAD * rng.normal(size=128),
            })
        family += 1
    return pd.DataFrame(rows[:n_items])


def _listing_name(rng: np.random.Generator, item: pd.Series) -> str:
    noun = item.noun if rng.random() > 0.3 else SYNONYMS.get(item.noun, item.noun)
    parts = [noun, item.brand]
    if rng.random() < 0.5:
        parts.append(item.model)
    if rng.random() < 0.6:
        parts.append(item.colour)
    if rng.random() < 0.6:
        parts.append(f"{item.size} г" if rng.random() < 0.5 else f"{item.size / 1000:g} кг")
    if rng.random() < 0.4:
        parts.insert(1, item.adjective)
    head, tail = parts[:1], parts[1:]
    rng.shuffle(tail)
    name = " ".join(head + tail)
    return name.lower() if rng.random() < 0.15 else name


def _spelling(rng: np.random.Generator, word: str) -> str:
    draw = rng.random()
    return word.capitalize() if draw < 0.15 else word.replace("е", "ё", 1) if draw < 0.25 else word


def _listing_attributes(rng: np.random.Generator, item: pd.Series) -> str:
    attributes = {
        "Бренд": [item.brand],
        # Sellers write one value in several ways: the same item need not give equal strings.
        "Цвет товара": [_spelling(rng, item.colour)] + ([COLOURS[rng.integers(len(COLOURS))]] if rng.random() < 0.15 else []),
        "Модель": [item.model.lower() if rng.random() < 0.25 else item.model],
        "Артикул": [f"{item.model}-{rng.integers(10, 99)}"],
        "Вес товара, г": [str(item.size) if rng.random() < 0.75 else f"{item.size / 1000:g} кг"],
        "Материал": [item.material],
        "Страна-изготовитель": [item.country],
        "Тип": [item.noun],
        "Комплектация": [f"{item.noun}, инструкция"],
    }
    kept = [key for key in attributes if rng.random() > 0.25]
    rng.shuffle(kept)
    return json.dumps({key: attributes[key] for key in kept}, ensure_ascii=False)


def _listing_description(rng: np.random.Generator, item: pd.Series) -> str | None:
    if rng.random() < 0.12:
        return None
    sentences = [
        f"{item.noun} от бренда {item.brand} &mdash; {item.adjective} выбор на каждый день.",
        f"Цвет: {item.colour}.",
        f"Материал: {item.material}&nbsp;высокого качества.",
        f"Модель {item.model}, вес {item.size}&nbsp;г.",
        f"Производство: {item.country}.",
        "Гарантия &quot;качества&quot; от производителя.",
    ]
    kept = [s for s in sentences if rng.random() > 0.3] or sentences[:1]
    if rng.random() < 0.5:
        body = "<ul>" + "".join(f"<li>{s}</li>" for s in kept) + "</ul>"
    else:
        body = "<br/>".join(kept)
    emoji = EMOJI[rng.integers(len(EMOJI))] if rng.random() < 0.4 else ""
    return f"<p>{emoji} {body}  </p>"


def _photo(rng: np.random.Generator, centre: np.ndarray) -> np.ndarray:
    # ResNet features after ReLU are non-negative.
    return np.abs(centre + LISTING_NOISE * rng.normal(size=128)).astype(np.float32)


def _listings(rng: np.random.Generator, catalogue: pd.DataFrame, listing_item: np.ndarray) -> dict[str, list]:
    columns: dict[str, list] = {k: [] for k in ("name", "description", "name_bert_64", "attributes",
                                                 "categories", "main_pic", "extra_pics")}
    for item_index in listing_item:
        item = catalogue.iloc[item_index]
        columns["name"].append(_listing_name(rng, item))
        columns["description"].append(_listing_description(rng, item))
        name_vec = item.name_vec + LISTING_NOISE * rng.normal(size=64)
        columns["name_bert_64"].append((4.0 * name_vec / np.linalg.norm(name_vec)).astype(np.float32))
        columns["attributes"].append(_listing_attributes(rng, item))
        columns["categories"].append(json.dumps(
            {"1": "EPG", "2": item.level2, "3": item.level3, "4": item.level4}, ensure_ascii=False))
        columns["main_pic"].append([_photo(rng, item.photo_vec)])
        n_extra = int(rng.integers(0, 17)) if rng.random() > 0.35 else 0
        columns["extra_pics"].append(
            [_photo(rng, item.photo_vec) for _ in range(n_extra)] if n_extra else None)
    return columns


def _sample_pairs(rng: np.random.Generator, catalogue: pd.DataFrame, item_listings: list[np.ndarray],
                  n_pairs: int) -> pd.DataFrame:
    """About half positives (two listings of one item), the rest near misses and same-category others."""
    families = catalogue.groupby("family").indices
    by_level2 = catalogue.groupby("level2").indices
    multi = np.array([i for i, listings in enumerate(item_listings) if len(listings) > 1])
    left, right, target = [], [], []
    for _ in range(n_pairs):
        draw = rng.random()
        if draw < 0.56:
            item = multi[rng.integers(len(multi))]
            a, b = rng.choice(item_listings[item], 2, replace=False)
            label = 1
        else:
            item = int(rng.integers(len(catalogue)))
            row = catalogue.iloc[item]
            pool = families[row.family] if draw < 0.8 else by_level2[row.level2]
            other = int(pool[rng.integers(len(pool))])
            if other == item:
                other = int(by_level2[row.level2][rng.integers(len(by_level2[row.level2]))])
            if other == item:
                continue
            a = rng.choice(item_listings[item])
            b = rng.choice(item_listings[other])
            label = 0
        left.append(a)
        right.append(b)
        target.append(label)
    return pd.DataFrame({"left": left, "right": right, "target": target})


def generate(size: DemoSize, seed: int) -> dict[str, pa.Table]:
    """The five competition tables, deterministic for a given size and seed."""
    rng = np.random.default_rng(seed)
    n_items = max(8, int((size.n_train_pairs + size.n_test_pairs) * 0.6))
    catalogue = _build_catalogue(rng, n_items)
    listings_per_item = rng.choice([1, 2, 2, 3], size=n_items)
    listing_item = np.repeat(np.arange(n_items), listings_per_item)
    n_products = len(listing_item)
    starts = np.concatenate([[0], np.cumsum(listings_per_item)[:-1]])
    item_listings = [np.arange(s, s + c) for s, c in zip(starts, listings_per_item)]

    # Large random ids like the real ones, so that nothing can lean on row positions.
    ids = rng.choice(np.arange(10**8, 10**8 + 10 * n_products, dtype=np.int64), n_products, replace=False)
    listing = _listings(rng, catalogue, listing_item)

    # Oversample, then keep distinct unordered pairs: train and test share none but the planted leak.
    n_wanted = size.n_train_pairs + size.n_test_pairs
    pairs = _sample_pairs(rng, catalogue, item_listings, int(n_wanted * 1.5) + 10)
    key = np.minimum(pairs.left, pairs.right) * n_products + np.maximum(pairs.left, pairs.right)
    pairs = pairs[~key.duplicated()].head(n_wanted).reset_index(drop=True)
    train, test = pairs.iloc[: size.n_train_pairs], pairs.iloc[size.n_train_pairs:].reset_index(drop=True)
    # Known dirt: a few train pairs repeated in reversed order, some with the opposite label,
    # and a few test pairs that also sit in train (in either orientation).
    n_dup = max(2, len(train) // 250)
    dup = train.sample(n_dup, random_state=seed).rename(columns={"left": "right", "right": "left"})
    flip = rng.random(n_dup) < 0.18
    dup.loc[flip, "target"] = 1 - dup.loc[flip, "target"]
    leak = test.sample(max(1, len(test) // 50), random_state=seed + 1)
    swap = rng.random(len(leak)) < 0.5
    leak.loc[swap, ["left", "right"]] = leak.loc[swap, ["right", "left"]].to_numpy()
    train = pd.concat([train, dup, leak], ignore_index=True).sample(frac=1.0, random_state=seed)

    order = rng.permutation(n_products)  # product files in an order unrelated to the pairs
    vector = pa.list_(pa.float32())  # the real files hold plain lists of floats

    def in_file_order(values: list) -> list:
        return [values[i] for i in order]

    return {
        "train": pa.table({"variantid1": ids[train.left.to_numpy()], "variantid2": ids[train.right.to_numpy()],
                           "target": train.target.to_numpy(np.int64)}),
        "test": pa.table({"variantid1": ids[test.left.to_numpy()], "variantid2": ids[test.right.to_numpy()]}),
        "attributes": pa.table({
            "variantid": ids[order],
            "categories": pa.array(in_file_order(listing["categories"]), pa.string()),
            "characteristic_attributes_mapping": pa.array(in_file_order(listing["attributes"]), pa.string()),
        }),
        "text_and_bert": pa.table({
            "variantid": ids[order],
            "name": pa.array(in_file_order(listing["name"]), pa.string()),
            "description": pa.array(in_file_order(listing["description"]), pa.string()),
            "name_bert_64": pa.array(in_file_order(listing["name_bert_64"]), vector),
        }),
        "resnet": pa.table({
            "variantid": ids[order],
            "main_pic_embeddings_resnet_v1": pa.array(in_file_order(listing["main_pic"]), pa.list_(vector)),
            "pic_embeddings_resnet_v1": pa.array(in_file_order(listing["extra_pics"]), pa.list_(vector)),
        }),
    }


def write_tables(tables: dict[str, pa.Table], out_dir: Path) -> None:
    for name, table in tables.items():
        with atomic_path(out_dir / f"{name}.parquet") as tmp:
            pq.write_table(table, tmp)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=paths.DEMO_RAW, help="folder for the five parquet files")
    args = parser.parse_args(argv)
    params = load_params()
    demo = params["demo"]
    size = DemoSize(n_train_pairs=int(demo["n_train_pairs"]), n_test_pairs=int(demo["n_test_pairs"]))
    tables = generate(size, seed=int(demo["seed"]))
    write_tables(tables, args.out)
    print(f"demo: {tables['train'].num_rows} train pairs, {tables['test'].num_rows} test pairs, "
          f"{tables['attributes'].num_rows} products -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
