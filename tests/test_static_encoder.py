"""encoder=static: the distill stage, the static encoder and their use by embed_text and scoring."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import LAYOUT, REPO, prepare_with
from matching import config
from matching.encoders import static
from matching.encoders.base import encode_distinct
from matching.errors import ConfigError, DataError
from matching.npz import read_arrays
from matching.stages import distill as distill_stage
from matching.stages import embed_text as embed_text_stage

TEXTS = [
    "Смартфон Samsung черный 128 г",
    "Бренд: Funny Ducks; Цвет товара: бежевый",
    "Кастрюля Tefal 2 л, нержавеющая сталь " * 30,  # beyond max_length tokens
    "Наушники беспроводные Xiaomi белые",
    "",
    "ёжик",  # no token the tiny vocabulary knows as a word
]


@pytest.fixture(scope="module")
def distilled(tiny_bert, tmp_path_factory):
    folder = tmp_path_factory.mktemp("static")
    static.distill(str(tiny_bert), dims=8, sif_coefficient=1e-3, device="cpu", folder=folder)
    return folder


def plain_mean(model: static.StaticModel, text: str, max_length: int) -> np.ndarray:
    """The definition, one text at a time: the tokenizer on the whole text, unknown tokens dropped, the
    first `max_length` tokens' weighted vectors averaged, at unit length."""
    ids = [i for i in model.tokenizer.encode(text, add_special_tokens=False).ids if i != model.unknown][:max_length]
    if not ids:
        return np.zeros(model.dim, np.float32)
    mean = (model.vectors[ids] * model.weights[ids, None]).sum(0) / len(ids)
    return mean / np.linalg.norm(mean) if model.normalize else mean


def test_static_vectors_are_the_weighted_mean_of_the_texts_tokens(distilled):
    model = static.StaticModel(distilled)
    vectors = static.static_encoder(distilled, max_length=16)(TEXTS)
    assert vectors.shape == (len(TEXTS), 8) and vectors.dtype == np.float32
    expected = np.stack([plain_mean(model, text, 16) for text in TEXTS])
    np.testing.assert_allclose(vectors, expected, rtol=1e-5, atol=1e-6)
    assert not vectors[4].any()  # an empty text: zeros, as model2vec gives it
    assert not np.allclose(vectors[2], static.static_encoder(distilled, max_length=64)([TEXTS[2]])[0])


def test_static_bytes_do_not_depend_on_threads_or_chunks(distilled, monkeypatch):
    texts = [f"{text} {i}" for i in range(50) for text in TEXTS]
    one = static.static_encoder(distilled, 16, threads=1)(texts)
    monkeypatch.setattr(static, "CHUNK_TEXTS", 7)
    several = static.static_encoder(distilled, 16, threads=3)(texts)
    assert one.tobytes() == several.tobytes()


def test_a_changed_or_missing_distilled_model_is_refused_in_one_line(distilled, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(distilled, copy)
    with open(copy / "model.safetensors", "r+b") as handle:
        handle.truncate(100)
    with pytest.raises(DataError, match=r"model.safetensors: changed since it was saved.*dvc repro distill"):
        static.StaticModel(copy)
    with pytest.raises(Exception, match=r"no distilled static model; run `dvc repro distill`"):
        static.StaticModel(tmp_path / "nothing")


def test_sif_coefficient_must_lie_strictly_between_zero_and_one():
    from matching.compose_params import composed

    for value in (0.0, 1.0):
        params = composed([f"embed.static.sif_coefficient={value}"], REPO / "conf")
        with pytest.raises(ConfigError, match=r"embed.static.sif_coefficient is .*use a number > 0.0 and < 1.0"):
            config.from_dict(params)


def test_distill_and_embed_text_stages_with_the_static_backend(raw_dir, tiny_bert):
    from matching.scoring.products import saved_text_encoder

    prepare_with(
        raw_dir,
        **{
            "embed.descriptions.backend": "static",
            "embed.descriptions.model": str(tiny_bert),
            "embed.static.dims": 8,
            "embed.device": "cpu",
        },
    )
    distill_stage.main(["attributes"])  # lexical: a marker only, the same bytes every time
    marker = LAYOUT.static_model("attributes") / static.UNUSED
    first = marker.read_bytes()
    distill_stage.main(["attributes"])
    assert [p.name for p in LAYOUT.static_model("attributes").iterdir()] == [static.UNUSED]
    assert marker.read_bytes() == first
    distill_stage.main(["descriptions"])
    embed_text_stage.main(["descriptions"])
    arrays = read_arrays(LAYOUT.embedding_file("descriptions"))
    products = pd.read_parquet(LAYOUT.products)
    assert arrays["vectors"].shape == (len(products), 8)
    missing = np.isnan(arrays["vectors"][:, 0])
    assert missing.sum() == products.description.isna().sum() > 0
    saved = json.loads((LAYOUT.encoder_dir("descriptions") / "static.json").read_text())
    assert saved == {"backend": "static", "model": str(tiny_bert), "max_length": 512}
    # A new product is encoded as the stage encoded the catalog's.
    encoder = saved_text_encoder(LAYOUT.encoder_dir("descriptions"), "cpu", LAYOUT.static_model("descriptions"))
    texts = embed_text_stage.modality_texts("descriptions", products)
    again = encode_distinct(texts, encoder)
    assert again.tobytes() == arrays["vectors"].tobytes()
