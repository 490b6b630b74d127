"""The vectorised TF-IDF gives scikit-learn's TfidfVectorizer results, in chunks and threads alike."""

import numpy as np
import pyarrow as pa
import pytest
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from matching.encoders import tfidf as module
from matching.encoders.tfidf import fit_tfidf_vocabulary

FIT = [
    "Смартфон Samsung Galaxy A52 128GB чёрный",
    "смартфон  samsung galaxy a52 128gb black",
    None,
    "",
    "x",
    "Кабель USB-C/Lightning 1м, белый",
    "кабель usb type-c 2 м белый белый",
    "  leading and trailing\tspaces ",
    "ёж_1 a-b 500мл 2шт",
    "no\xa0break\u3000ideographic\x1cseparator\x85next\u2009thin",
]
LATER = ["Samsung Galaxy 😀 новый", "кабель Ωmega", None, "abc", "galaxy galaxy galaxy", "zero\u200bwidth\xa0space"]


def sklearn_tfidf(analyzer, ngrams, max_features=None):
    words = {"token_pattern": r"(?u)\b\w+\b"} if analyzer == "word" else {}
    return TfidfVectorizer(
        analyzer=analyzer, ngram_range=ngrams, sublinear_tf=True, max_features=max_features, **words
    ).fit([t or "" for t in FIT])


@pytest.mark.parametrize(
    "analyzer, ngrams", [("char_wb", (2, 4)), ("char_wb", (1, 2)), ("char_wb", (4, 4)), ("word", (1, 1))]
)
def test_tfidf_matches_scikit_learn_on_fitted_and_unseen_texts(analyzer, ngrams):
    expected = sklearn_tfidf(analyzer, ngrams)
    vocabulary = fit_tfidf_vocabulary(pa.array(FIT), analyzer, ngrams, max_features=10**6)
    assert len(vocabulary.idf) == len(expected.vocabulary_)
    np.testing.assert_allclose(np.sort(vocabulary.idf), np.sort(expected.idf_), rtol=1e-6)
    for texts in (FIT, LATER):  # columns differ in order: compare the texts' cosines and row norms
        ours, theirs = vocabulary.transform(texts), expected.transform([t or "" for t in texts])
        # float32 rows: a long text's self-cosine rounds to 1 - 1.3e-6
        np.testing.assert_allclose((ours @ ours.T).toarray(), (theirs @ theirs.T).toarray(), atol=5e-6)
        assert ours.shape == (len(texts), len(vocabulary.idf)) and ours.dtype == np.float32


@pytest.mark.parametrize("analyzer", ["char_wb", "word"])
def test_max_features_keeps_the_most_frequent_terms(analyzer):
    words = {"token_pattern": r"(?u)\b\w+\b"} if analyzer == "word" else {}
    counts = CountVectorizer(analyzer=analyzer, ngram_range=(2, 4) if analyzer == "char_wb" else (1, 1), **words)
    totals = np.asarray(counts.fit_transform([t or "" for t in FIT]).sum(axis=0)).ravel()
    ngrams = (2, 4) if analyzer == "char_wb" else (1, 1)
    limited = fit_tfidf_vocabulary(pa.array(FIT), analyzer, ngrams, max_features=10)
    full = fit_tfidf_vocabulary(pa.array(FIT), analyzer, ngrams, max_features=10**6)
    assert len(limited.idf) == 10
    kept = set(np.asarray(limited.terms).tolist())
    kept_counts = [totals[i] for i, term in enumerate(_terms_in_sklearn_order(full, counts)) if term in kept]
    dropped_counts = [totals[i] for i, term in enumerate(_terms_in_sklearn_order(full, counts)) if term not in kept]
    assert min(kept_counts) >= max(dropped_counts)


def _terms_in_sklearn_order(vocabulary, counts):
    """Our term (packed n-gram or word) of each of scikit-learn's features, in its column order."""
    names = counts.get_feature_names_out()
    if vocabulary.analyzer == "word":
        return list(names)
    alphabet = {chr(c): rank + 1 for rank, c in enumerate(vocabulary.alphabet)}
    packed = []
    for gram in names:
        code = 0
        for char in gram:
            code = (code << module.BITS) | alphabet[char]
        packed.append(code)
    return packed


def test_chunks_in_threads_give_the_one_chunk_result(monkeypatch):
    texts = [f"смартфон samsung {i} {c}" for i, c in enumerate(["черный", "белый", "синий"] * 20)]
    whole = fit_tfidf_vocabulary(texts, "char_wb", (2, 4), 1000).transform(texts)
    monkeypatch.setattr(module, "CHUNK_TEXTS", 7)
    monkeypatch.setattr(module, "THREADS", 2)
    split_vocabulary = fit_tfidf_vocabulary(texts, "char_wb", (2, 4), 1000)
    split = split_vocabulary.transform(texts)
    assert (split != whole).nnz == 0


def test_texts_without_terms_give_no_vocabulary_and_bad_settings_are_refused():
    assert fit_tfidf_vocabulary([None, "", "  "], "char_wb", (2, 4), 10) is None
    assert fit_tfidf_vocabulary([None, "", " - "], "word", (1, 1), 10) is None
    with pytest.raises(ValueError, match="n-gram range"):
        fit_tfidf_vocabulary(FIT, "char_wb", (2, 5), 10)
    with pytest.raises(ValueError, match="analyzer"):
        fit_tfidf_vocabulary(FIT, "char", (2, 4), 10)
