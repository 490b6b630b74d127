"""Text preparation, encoders (lexical and a tiny local BERT) and photo pooling."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.decomposition import PCA

from conftest import LAYOUT, REPO, prepare_with
from matching import config
from matching.device import resolve_device
from matching.encoders import texts as embed_text
from matching.encoders.base import encode_distinct
from matching.encoders.lexical import lexical_encoder
from matching.encoders.photos import pool_photo_sets
from matching.encoders.transformer import load_sentence_transformer, sentence_transformer_encoder
from matching.errors import ConfigError
from matching.npz import read_arrays
from matching.stages import embed_text as embed_text_stage


def test_descriptions_lose_html_entities_emoji_and_spaces():
    raw = pd.Series(
        [
            "<p>🔥 Кастрюля&nbsp;от <b>Tefal</b> &quot;2 л&quot;<br/>  новая ✅</p>",
            None,
            "<br/> 🎁 ",
            "<ul><li>Цвет: черный.</li><li>Вес 50&nbsp;г.</li></ul>",
        ]
    )
    clean = embed_text.clean_description(raw)
    assert clean[0] == 'Кастрюля от Tefal "2 л" новая'
    assert clean[1] is None and clean[2] is None  # null stays missing; nothing left after cleaning too
    assert clean[3] == "Цвет: черный. Вес 50 г."


def test_attribute_text_is_the_same_whatever_the_key_order():
    a = json.dumps({"Цвет товара": ["бежевый", "светло-розовый"], "Бренд": ["Funny Ducks"]}, ensure_ascii=False)
    b = json.dumps({"Бренд": ["Funny Ducks"], "Цвет товара": ["бежевый", "светло-розовый"]}, ensure_ascii=False)
    text = embed_text.attributes_text(pd.Series([a, b, None, "{}"]))
    assert text[0] == text[1] == "Бренд: Funny Ducks; Цвет товара: бежевый, светло-розовый"
    assert text[2] is None and text[3] is None


def test_each_distinct_text_is_encoded_once_and_missing_stays_nan():
    seen = []

    def encoder(texts):
        seen.extend(texts)
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    vectors = encode_distinct(pd.Series(["ab", None, "abc", "ab", "abc"]), encoder)
    assert sorted(seen) == ["ab", "abc"]
    assert np.isnan(vectors[1]).all()
    np.testing.assert_array_equal(vectors[[0, 2, 3, 4], 0], [2, 3, 2, 3])


def test_lexical_encoder_is_unit_length_deterministic_and_lexical():
    texts = ["смартфон samsung черный", "смартфон samsung чёрный", "кастрюля tefal 2 л", "кукла baby born"] * 3
    encode = lexical_encoder(dim=8, ngram_min=2, ngram_max=4, max_features=1000, seed=0)
    a, b = encode(texts), encode(texts)
    np.testing.assert_array_equal(a, b)
    assert np.linalg.norm(a, axis=1) == pytest.approx(1.0, abs=1e-5)
    assert a[0] @ a[1] > a[0] @ a[2]


def test_lexical_encoder_fitted_on_a_sample_projects_every_text_in_chunks():
    texts = [f"смартфон samsung {c} {i}" for i, c in enumerate(["черный", "белый", "синий"] * 40)] + ["кукла baby born"]
    whole = lexical_encoder(dim=8, ngram_min=2, ngram_max=4, max_features=1000, seed=0, fit_sample=10**6)(texts)
    sampled = lexical_encoder(dim=8, ngram_min=2, ngram_max=4, max_features=1000, seed=0, fit_sample=30)(texts)
    chunked = lexical_encoder(dim=8, ngram_min=2, ngram_max=4, max_features=1000, seed=0, fit_sample=30, chunk=7)(texts)
    np.testing.assert_allclose(chunked, sampled, atol=1e-5)  # 13 chunks over the worker processes, same vectors
    assert sampled.shape == whole.shape and np.linalg.norm(sampled[:-1], axis=1) == pytest.approx(1.0, abs=1e-5)
    assert not np.allclose(sampled, whole, atol=1e-3), "the sample is a different fit"
    # The doll shares no n-gram with the 30 phones of the sample: a zero vector, so no cosine.
    assert not sampled[-1].any() and np.linalg.norm(whole[-1]) == pytest.approx(1.0)


def test_device_auto_falls_back_to_cpu_without_a_gpu():
    import torch

    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["embed"]["device"] = "tpu"
    with pytest.raises(ConfigError, match="embed.device is 'tpu'; use one of auto, cpu, cuda"):
        config.from_dict(params)


def test_photo_pooling_matches_pca_to_one_component_and_is_deterministic():
    rng = np.random.default_rng(0)
    sets = [rng.random((k, 128)).astype(np.float32) for k in (3, 0, 1, 5, 3)]
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in sets])])
    pooled = pool_photo_sets(offsets, np.concatenate(sets))
    np.testing.assert_array_equal(pooled["extra_count"], [3, 0, 1, 5, 3])
    assert np.isnan(pooled["extra_pca"][1]).all() and np.isnan(pooled["extra_mean"][1]).all()
    np.testing.assert_allclose(pooled["extra_mean"][3], sets[3].mean(axis=0), rtol=1e-5)
    reference = PCA(n_components=1).fit_transform(sets[3].T.astype(np.float64))[:, 0]
    np.testing.assert_allclose(np.abs(pooled["extra_pca"][3] @ reference), np.linalg.norm(reference) ** 2, rtol=1e-4)
    np.testing.assert_allclose(pooled["extra_pca"][2], sets[2][0] - sets[2][0].mean(), rtol=1e-5, atol=1e-6)
    # The sign is fixed by the photos, not by the order they come in.
    shuffled = [s[::-1] for s in sets]
    again = pool_photo_sets(offsets, np.concatenate(shuffled))
    np.testing.assert_allclose(again["extra_pca"][[0, 3, 4]], pooled["extra_pca"][[0, 3, 4]], rtol=1e-4, atol=1e-5)


def test_sentence_transformers_backend_runs_a_local_model_folder(tiny_bert):
    settings = dict(model=str(tiny_bert), device="cpu", batch_size=2, max_length=16)
    encode = sentence_transformer_encoder(**settings)
    texts = ["Смартфон Samsung черный", "Кастрюля Tefal", "Смартфон Samsung черный", "Наушники Xiaomi белые"]
    vectors = encode(texts)
    assert vectors.shape == (4, 32) and vectors.dtype == np.float32
    # Same text, other batch position: equal up to float noise (3e-8 seen on a value of 3e-4).
    np.testing.assert_allclose(vectors[0], vectors[2], rtol=1e-5, atol=1e-6)
    # Length-sorted batches must give each text its own vector back, in the caller's order.
    single = np.stack([encode([t])[0] for t in texts])
    np.testing.assert_allclose(vectors, single, rtol=1e-4, atol=1e-5)


def test_a_model_that_cannot_be_loaded_offline_stops_in_one_line(tmp_path, monkeypatch):
    from matching.config import ConfigError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as on a machine without a network: fails at once
    for model, where in (("no-such-org/no-such-model", "not a local folder"), (str(tmp_path), "holds no loadable")):
        with pytest.raises(ConfigError) as error:
            sentence_transformer_encoder(model, "cpu", batch_size=2, max_length=16)
        message = str(error.value)
        assert "\n" not in message and model in message and where in message and "local folder" in message


def test_a_local_model_reads_no_more_tokens_than_its_positions(tiny_bert):
    encoder = load_sentence_transformer(str(tiny_bert), "cpu", max_length=512)  # the model has 128 positions
    assert encoder.max_seq_length == 128
    assert encoder.encode(["слово " * 400]).shape == (1, 32)


def test_embed_text_stage_with_a_local_transformer(raw_dir, tiny_bert):
    prepare_with(
        raw_dir,
        **{
            "embed.descriptions.backend": "sentence-transformers",
            "embed.descriptions.model": str(tiny_bert),
            "embed.device": "cpu",
        },
    )
    embed_text_stage.main(["descriptions"])
    arrays = read_arrays(LAYOUT.embedding_file("descriptions"))
    products = pd.read_parquet(LAYOUT.products)
    assert arrays["vectors"].shape == (len(products), 32)
    np.testing.assert_array_equal(arrays["variantid"], products.variantid)
    missing = np.isnan(arrays["vectors"][:, 0])
    assert missing.sum() == products.description.isna().sum() > 0


def test_a_killed_transformer_encoding_resumes_from_its_saved_blocks(tiny_bert, tmp_path, monkeypatch):
    from matching.encoders import transformer

    texts = [f"товар номер {i} " + "слово " * (i % 7) for i in range(40)]
    monkeypatch.setattr(transformer, "BLOCK_TEXTS", 16)  # blocks of 16, 16 and 8 texts
    settings = dict(model=str(tiny_bert), device="cpu", batch_size=1, max_length=16)
    plain = load_sentence_transformer(str(tiny_bert), "cpu", 16).encode(texts, convert_to_numpy=True)
    ours = sentence_transformer_encoder(**settings)(texts)
    np.testing.assert_allclose(ours, plain, rtol=1e-4, atol=1e-5)  # the batching gives SentenceTransformer's vectors
    calls = []
    original = transformer.Batches.block

    def killed_on_third_block(self, start, stop):
        calls.append(stop - start)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        return original(self, start, stop)

    monkeypatch.setattr(transformer.Batches, "block", killed_on_third_block)
    with pytest.raises(KeyboardInterrupt):
        sentence_transformer_encoder(**settings, cache_dir=tmp_path / "cache")(texts)
    assert len(list((tmp_path / "cache").rglob("block_*.npy"))) == 2
    calls.clear()
    resumed = sentence_transformer_encoder(**settings, cache_dir=tmp_path / "cache")(texts)
    assert calls == [8]  # only the block that was not finished
    np.testing.assert_allclose(resumed, ours, rtol=1e-5, atol=1e-6)
    assert not list((tmp_path / "cache").rglob("block_*.npy"))  # cleaned up once complete


def test_blocks_tokenized_in_worker_processes_give_the_same_vectors(tiny_bert, monkeypatch):
    # A GPU's path, on the CPU: blocks handed to two tokenizer processes.
    from matching.encoders import transformer

    texts = [f"товар номер {i} " + "слово " * (i % 7) for i in range(40)]
    # prepared in the processes as here: cut to max_length * TOKEN_CHARS characters, stripped, lowercased
    texts += ["  Смартфон SAMSUNG  ", "ОЧЕНЬ " * 40 + "длинное описание", "\tПробелы\n"]
    monkeypatch.setattr(transformer, "BLOCK_TEXTS", 16)
    settings = dict(model=str(tiny_bert), device="cpu", batch_size=2, max_length=16)
    alone = sentence_transformer_encoder(**settings)(texts)
    pools = []
    original = transformer.tokenizer_pool

    def two_processes(encoder, lower):
        pools.append(original(encoder, lower, processes=2))
        return pools[-1]

    monkeypatch.setattr(transformer, "tokenizer_pool", two_processes)
    pooled = sentence_transformer_encoder(**settings)(texts)
    pools[0].shutdown()
    assert pooled.tobytes() == alone.tobytes()


def test_int8_encoding_stays_close_to_float32(tiny_bert):
    texts = ["Смартфон Samsung черный", "Кастрюля Tefal 2 л", "Наушники Xiaomi белые"]
    settings = dict(model=str(tiny_bert), device="cpu", batch_size=2, max_length=16)
    full = sentence_transformer_encoder(**settings)(texts)
    quantised = sentence_transformer_encoder(**settings, precision="int8")(texts)
    cosine = (full * quantised).sum(1) / np.linalg.norm(full, axis=1) / np.linalg.norm(quantised, axis=1)
    assert cosine.min() > 0.95


def test_a_modality_without_any_text_saves_an_encoder_that_scores_new_products_alike(tmp_path):
    # A benchmark without descriptions: the stage fits nothing, every product's vector is missing;
    # a trained repository must still load, and new products get the same missing vector.
    from matching.scoring.products import saved_text_encoder

    settings = config.TextEmbedding(backend="lexical", model="unused", batch_size=8, max_length=16)
    embed_text_stage.save_encoder(tmp_path, settings, lexical=None)
    training = encode_distinct(pd.Series([None, None], dtype=object), lambda texts: 1 / 0)
    new = encode_distinct(
        pd.Series(["a new card's text", None]), saved_text_encoder(tmp_path, "cpu", tmp_path / "static")
    )
    assert training.shape == new.shape == (2, 1) and np.isnan(new).all()
