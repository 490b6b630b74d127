"""Token ids for the encoders: distinct words, worker processes and numpy padding give what the tokenizer gives."""

import numpy as np
import pytest
from transformers import AutoTokenizer

from matching.encoders import tokens

TEXTS = [f"товар номер {i} " + "слово " * (i % 9) + "Samsung, черный!" * (i % 2) for i in range(300)]
TEXTS += ["", "  ", "ёж", "  ведущие и  хвостовые пробелы  "]


@pytest.fixture(scope="module")
def serialised(tiny_bert):
    return AutoTokenizer.from_pretrained(str(tiny_bert)).backend_tokenizer.to_str()


def plain(serialised, texts, max_length):
    """The tokenizer's own ids for whole texts, truncated to `max_length`."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(serialised)
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    return [encoding.ids for encoding in tokenizer.encode_batch([text.strip() for text in texts])]


def test_words_give_the_tokenizers_ids_with_special_tokens_and_truncation(serialised):
    tokenize = tokens.TextTokenizer(serialised, max_length=9, cut=1000, lower=False, by_words=None, sample=TEXTS)
    assert tokenize.by_words
    ids, lengths = tokenize(TEXTS)
    expected = plain(serialised, TEXTS, 9)
    assert lengths.tolist() == [len(e) for e in expected] and lengths.max() == 9
    assert ids.tolist() == [token for e in expected for token in e]


def test_a_tokenizer_that_reads_words_in_context_is_run_on_whole_texts(serialised):
    import json

    # No pre-tokenizer: a word-level vocabulary reads each whole text as one piece.
    from tokenizers import Tokenizer, models

    words = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1, "b": 2, "a b": 3}, unk_token="[UNK]"))
    spec = json.loads(words.to_str())
    tokenize = tokens.TextTokenizer(json.dumps(spec), 8, 100, False, None, sample=["a b", "a"])
    assert not tokenize.by_words
    ids, lengths = tokenize(["a b", "a"])
    assert ids.tolist() == [3, 1] and lengths.tolist() == [1, 1]


def test_worker_processes_give_the_ids_the_calling_process_gives(serialised):
    tokenize = tokens.TextTokenizer(serialised, 12, 1000, False, None, sample=TEXTS)
    with tokenize.pool(2) as pool:
        parts = list(pool.map(tokens.worker_tokenize, [TEXTS[:100], TEXTS[100:]], [True] * 2))
    alone = tokenize(TEXTS)
    assert np.array_equal(np.concatenate([ids for ids, _ in parts]), alone[0])
    assert np.array_equal(np.concatenate([lengths for _, lengths in parts]), alone[1])


def test_padded_batches_hold_each_texts_ids_within_the_budget(serialised):
    ids, lengths = tokens.TextTokenizer(serialised, 12, 1000, False, True)(TEXTS)
    expected = plain(serialised, TEXTS, 12)
    batches = tokens.padded_batches(ids, lengths, budget=40, pad=0)
    seen = np.concatenate([members for members, _, _ in batches])
    assert sorted(seen.tolist()) == list(range(len(TEXTS)))  # every text once
    for members, batch, mask in batches:
        assert batch.size <= 40 or len(members) == 1
        for row, text in enumerate(members):
            count = int(mask[row].sum())
            assert batch[row, :count].tolist() == expected[text] and not batch[row, count:].any()
            assert not mask[row, count:].any()


def test_a_pool_reads_its_tokenizer_from_a_file_removed_with_the_pool(serialised, tmp_path, monkeypatch):
    import gc
    import tempfile

    # A spawned process's arguments go through a pipe the parent fills while the child starts: the
    # tokenizer's megabytes go through a file instead, and nothing of it stays behind.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    tokenize = tokens.TextTokenizer(serialised, 12, 1000, False, True)
    pool = tokenize.pool(1)
    (folder,) = tmp_path.glob("matching-tokenizer-*")
    assert (folder / "tokenizer.json").read_text(encoding="utf-8") == tokenize.serialised
    ids, lengths = pool.submit(tokens.worker_tokenize, TEXTS, True).result()
    assert np.array_equal(ids, tokenize(TEXTS)[0]) and np.array_equal(lengths, tokenize(TEXTS)[1])
    pool.shutdown()
    del pool
    gc.collect()
    assert not folder.exists()
