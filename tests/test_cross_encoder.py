"""The cross-encoder's cards (serialisation), its warm-up, and that it learns from both cards at once."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import save_tiny_bert
from matching import config, metric
from matching.errors import StageError
from matching.matchers import cross_encoder
from matching.matchers.cross_encoding import batching, pretrained, serialising
from matching.matchers.crossfit import InnerSplit, cross_fit
from matching.matchers.fitting import linear_warmup


def test_a_card_is_its_name_the_most_filled_attributes_and_a_description_excerpt():
    products = pd.DataFrame(
        {
            "name": ["Кастрюля Tefal", "Смартфон", None],
            "attributes": [
                json.dumps({"Объем, л": ["2"], "Бренд": ["Tefal"], "Цвет": ["серый", "черный"]}, ensure_ascii=False),
                json.dumps({"Бренд": ["Samsung"]}),
                None,
            ],
            "description": ["<p>Кастрюля из&nbsp;стали</p>", None, "Только описание"],
        }
    )
    keys = serialising.key_order(products.attributes)
    assert keys == ["Бренд", "Объем, л", "Цвет"]  # Бренд filled twice, then by name
    cards = serialising.card_texts(products, keys, attribute_count=2, description_chars=9)
    assert cards.tolist() == [
        "Кастрюля Tefal | Бренд: Tefal; Объем, л: 2 | Кастрюля ",  # tags and entities cleaned, then cut
        "Смартфон | Бренд: Samsung",
        "Только оп",
    ]
    unranked = serialising.card_texts(products.head(1), [], attribute_count=1, description_chars=0)
    assert unranked.tolist() == ["Кастрюля Tefal | Бренд: Tefal"]  # keys outside the ranking: by name


PAIR_TEMPLATES = {  # a model's special tokens around two cards: BERT's (with token types), RoBERTa's
    "bert": ("[CLS] $A [SEP] $B:1 [SEP]:1", ["input_ids", "token_type_ids", "attention_mask"]),
    "roberta": ("[CLS] $A [SEP] [SEP] $B [SEP]", ["input_ids", "attention_mask"]),
}


def with_pair_template(tokenizer, template: str):
    """The same vocabulary with another model's pair template (the tiny tokenizer has none)."""
    from tokenizers import processors

    pair, inputs = PAIR_TEMPLATES[template]
    ids = [(token, tokenizer.convert_tokens_to_ids(token)) for token in ("[CLS]", "[SEP]")]
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair=pair, special_tokens=ids
    )
    tokenizer.model_input_names = inputs
    return tokenizer


@pytest.mark.parametrize("template", ["none", "bert", "roberta"])
def test_pairs_assembled_from_cards_tokenised_once_equal_the_tokenizers_pair_call(tmp_path, template):
    rng = np.random.default_rng(0)
    words = ["кабель", "usb", "type", "c", "черный", "1", "м", "зарядка", "samsung", "чехол"]
    cards = np.array([" ".join(rng.choice(words, rng.integers(1, 30))) for _ in range(60)], dtype=object)
    tokenizer = pretrained.pretrained_tokenizer(str(save_tiny_bert(tmp_path / "tiny", cards.tolist(), 60)))
    if template != "none":
        tokenizer = with_pair_template(tokenizer, template)
    first, second = rng.integers(0, 60, 200), rng.integers(0, 60, 200)
    first[:10] = second[:10]  # cards of equal length: the tokenizer keeps the odd token in the second
    for max_length in (9, 16, 64):
        batch = batching.CardTokens(tokenizer, cards, max_length).batch(first, second)
        expected = batching.tokenised_pairs(tokenizer, cards[first], cards[second], max_length)
        assert batch.keys() == {k: v for k, v in expected.items() if k in tokenizer.model_input_names}.keys()
        for name, tensor in batch.items():
            assert torch.equal(tensor, expected[name]), (template, max_length, name)


def test_the_step_rises_over_the_warm_up_then_falls_to_zero():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    schedule = linear_warmup(optimizer, warmup_share=0.2, total_steps=10)
    steps = []
    for _ in range(10):
        steps.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    np.testing.assert_allclose(steps, [0, 0.5, 1, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8])


def test_batches_grouped_by_length_hold_every_row_once_and_pad_less():
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 129, 1000)
    order = rng.permutation(1000)
    grouped = batching.length_grouped(order, lengths, 16, np.random.default_rng(1), pool_batches=5)
    np.testing.assert_array_equal(np.sort(grouped), np.arange(1000))

    def padded_tokens(rows):  # a batch costs its longest pair, times the batch
        whole = len(rows) // 16 * 16
        return lengths[rows[:whole]].reshape(-1, 16).max(axis=1).sum() * 16

    assert padded_tokens(grouped) < 0.9 * padded_tokens(order)
    # Every whole batch comes from one pool of 80 shuffled rows (randomness beyond the pool kept), and
    # the partial batch of 1000 % 16 = 8 rows is last, where fit_network cuts it.
    pool_of = np.empty(1000, np.int64)
    pool_of[order] = np.arange(1000) // 80
    batches = pool_of[grouped[:992]].reshape(-1, 16)
    assert (batches == batches[:, :1]).all() and (pool_of[grouped[992:]] == pool_of[order[-1]]).all()
    assert not (np.diff(batches[:, 0]) >= 0).all()  # the batches' order shuffled across pools
    again = batching.length_grouped(order, lengths, 16, np.random.default_rng(1), pool_batches=5)
    np.testing.assert_array_equal(again, grouped)


def test_a_model_that_cannot_be_loaded_is_named_in_one_line(tmp_path):
    with pytest.raises(StageError, match=r"cross_encoder.model is '.*nowhere'.*local folder"):
        pretrained.pretrained_tokenizer(str(tmp_path / "nowhere"))


def tiny_settings(model, **fitting) -> config.CrossEncoder:
    """The cross-encoder's settings for a tiny model on short texts, cards the texts alone."""
    cards = dict(model=str(model), attribute_count=0, description_chars=0, precision="float32", warmup_share=0.1)
    defaults = dict(
        pooling="cls",
        device="cpu",
        weight_decay=0.01,
        validate_every=10**6,
        min_delta=0.0,
        freeze_word_embeddings=False,
        group_by_length=True,
    )
    return config.CrossEncoder(**cards, **{**defaults, **fitting})


@pytest.mark.slow
def test_it_learns_what_neither_card_says_alone_and_scores_both_orders_alike(tmp_path):
    # A pair matches when both cards name the same word: one card alone says nothing about the target.
    rng = np.random.default_rng(0)
    words = [f"w{i}x" for i in range(30)]
    first = rng.integers(0, 30, 2000)
    same = rng.random(2000) < 0.5
    second = np.where(same, first, (first + rng.integers(1, 30, 2000)) % 30)
    left = np.array([f"{words[i]} красный" for i in first], dtype=object)
    right = np.array([f"{words[i]} синий" for i in second], dtype=object)
    model = save_tiny_bert(tmp_path / "tiny", list(left) + list(right), vocab_size=100)
    # A random model's vocabulary has nothing to keep: its word embeddings are tuned too.
    settings = tiny_settings(model, learning_rate=3e-3, batch_size=32, max_epochs=15, patience=6, max_length=16)
    tokenizer = pretrained.pretrained_tokenizer(str(model))
    reader = batching.texts_reader(tokenizer, left, right, max_length=16, batch_size=32, precision="float32")
    ids, fold, curves = np.arange(2000), rng.integers(0, 2, 2000), []
    inner = InnerSplit(ids, ids + 2000, "pairs", 0.1, 0)
    fit_predict = cross_encoder.fit_cross_encoder(reader, same.astype(np.int8), settings, 0, inner, curves)
    oof, models = cross_fit(fold, fit_predict)
    assert metric.pr_auc(same, oof) > 0.75  # chance: 0.5; 0.92 when measured
    assert all(curve[-1]["train_loss"] < curve[0]["train_loss"] for curve in curves)
    swapped = batching.texts_reader(tokenizer, right, left, max_length=16, batch_size=32, precision="float32")
    np.testing.assert_allclose(swapped.scores(models[0], ids[:64]), reader.scores(models[0], ids[:64]), atol=1e-6)


def test_frozen_word_embeddings_stay_pretrained_while_the_rest_is_tuned(tmp_path):
    left = np.array([f"w{i % 7}x red" for i in range(64)], dtype=object)
    right = np.array([f"w{i % 5}x blue" for i in range(64)], dtype=object)
    model = save_tiny_bert(tmp_path / "tiny", list(left) + list(right), vocab_size=60)
    initial = pretrained.pretrained_classifier(str(model)).state_dict()
    settings = tiny_settings(
        model, learning_rate=1e-2, batch_size=16, max_epochs=1, patience=1, max_length=12, freeze_word_embeddings=True
    )
    tokenizer = pretrained.pretrained_tokenizer(str(model))
    reader = batching.texts_reader(tokenizer, left, right, max_length=12, batch_size=16, precision="float32")
    ids = np.arange(64)
    inner = InnerSplit(ids, ids + 64, "pairs", 0.25, 0)
    target = (np.arange(64) % 7 == np.arange(64) % 5).astype(np.int8)
    fit_predict = cross_encoder.fit_cross_encoder(reader, target, settings, 0, inner, [])
    _, tuned = fit_predict(ids, ids[:8], 0)
    word_embeddings = tuned.get_input_embeddings().weight
    name = next(key for key, weights in tuned.named_parameters() if weights is word_embeddings)
    torch.testing.assert_close(word_embeddings, initial[name])
    changed = [key for key, value in tuned.state_dict().items() if not torch.equal(value, initial[key])]
    assert any(".encoder." in key for key in changed) and name not in changed


def test_mean_pooling_reads_a_pairs_tokens_alone_whatever_the_batch_pads(tmp_path):
    left = np.array(["w1x red", "w2x blue green yellow w3x w4x w5x w6x"], dtype=object)
    right = np.array(["w1x", "w2x green w7x w8x w9x w3x"], dtype=object)
    model = save_tiny_bert(tmp_path / "tiny", list(left) + list(right), vocab_size=60)
    tokenizer = pretrained.pretrained_tokenizer(str(model))
    reader = batching.texts_reader(tokenizer, left, right, max_length=32, batch_size=2, precision="float32")
    classifier = pretrained.pretrained_classifier(str(model), pooling="mean").eval()
    assert isinstance(classifier, pretrained.MeanPooledClassifier)
    # In a batch with the long pair the short one is padded (cards 0 and 2 are its texts, 1 and 3 the other's).
    width = [reader.cards.batch(np.arange(n), np.arange(n) + 2)["input_ids"].shape[1] for n in (1, 2)]
    assert width[0] < width[1]
    with torch.no_grad():
        alone = reader.logits(classifier, np.array([0]), np.array([False]))
        padded = reader.logits(classifier, np.array([0, 1]), np.array([False, False]))
    torch.testing.assert_close(padded[0], alone[0])


def test_auto_pooling_follows_a_sentence_transformers_folders_pooling_and_is_saved_resolved(tmp_path):
    from sentence_transformers import SentenceTransformer, models

    texts = ["w1x red", "w2x blue green"]
    plain = save_tiny_bert(tmp_path / "plain", texts, vocab_size=60)
    for mode in ("mean", "cls"):
        encoder = models.Transformer(str(plain))
        pooling = models.Pooling(encoder.auto_model.config.hidden_size, pooling_mode=mode)
        SentenceTransformer(modules=[encoder, pooling], device="cpu").save(str(tmp_path / mode))
        assert pretrained.model_pooling(str(tmp_path / mode), "auto") == mode
    # The flags older sentence-transformers wrote (all-MiniLM-L6-v2's 1_Pooling), in place of the mode's name
    legacy = {"word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True}
    (tmp_path / "cls" / "1_Pooling" / "config.json").write_text(json.dumps(legacy))
    assert pretrained.model_pooling(str(tmp_path / "cls"), "auto") == "mean"
    assert pretrained.model_pooling(str(plain), "auto") == "cls"  # no sentence-transformers modules
    assert pretrained.model_pooling(str(plain), "mean") == "mean"  # named: taken as it is
    assert isinstance(
        pretrained.pretrained_classifier(str(tmp_path / "mean"), pooling="auto"), pretrained.MeanPooledClassifier
    )
    settings = tiny_settings(
        tmp_path / "mean", pooling="auto", learning_rate=1e-3, batch_size=2, max_epochs=1, patience=1, max_length=8
    )
    # What the saved weights load into: the pooling as resolved, never "auto".
    assert cross_encoder.serialisation_of(settings, [])["pooling"] == "mean"
