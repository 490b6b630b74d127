"""The project's TF-IDF (`matching.encoders.tfidf`) against scikit-learn's TfidfVectorizer on product texts.

Fits both on the first `--fit` texts of a products parquet (names and attribute dicts as rendered for
the lexical encoder), transforms `--rows` texts, and prints the medians of `--repeats` timings and how
far the two disagree (largest difference of a pair's cosine over 20,000 random pairs).

    python benchmarks/tfidf.py [--products data/prepared/products.parquet] [--rows 200000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.feature_extraction.text import TfidfVectorizer

from matching.encoders.texts import attributes_text
from matching.encoders.tfidf import fit_tfidf_vocabulary
from results import run_recorded  # noqa: E402


def timed(work, repeats: int):
    seconds, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = work()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=Path, default=Path("data/prepared/products.parquet"))
    parser.add_argument("--rows", type=int, default=200_000, help="texts to transform")
    parser.add_argument("--fit", type=int, default=200_000, help="texts to fit on (the pipeline's fit_sample)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    table = pq.read_table(args.products, columns=["name", "attributes"]).slice(0, max(args.rows, args.fit))
    texts = {
        "names": table["name"].combine_chunks().cast(pa.large_string()),
        "attributes": pa.array(attributes_text(table["attributes"].to_pandas()).tolist(), pa.large_string()),
    }
    print(
        f"{'texts':<12}{'analyzer':<10}{'n':>9}{'sklearn fit':>13}{'transform':>11}{'ours fit':>10}{'transform':>11}"
        f"{'max |d cos|':>13}"
    )
    for label, values in texts.items():
        for analyzer, ngrams in (("char_wb", (2, 4)), ("word", (1, 1))):
            words = {"token_pattern": r"(?u)\b\w+\b"} if analyzer == "word" else {}
            fit_texts, rows = values.slice(0, args.fit), values.slice(0, args.rows)
            fit_list, row_list = fit_texts.fill_null("").to_pylist(), rows.fill_null("").to_pylist()
            theirs = TfidfVectorizer(
                analyzer=analyzer,
                ngram_range=ngrams,
                max_features=100_000,
                sublinear_tf=True,
                dtype=np.float32,
                **words,
            )
            their_fit, _ = timed(lambda: theirs.fit(fit_list), args.repeats)
            their_transform, a = timed(lambda: theirs.transform(row_list), args.repeats)
            our_fit, ours = timed(lambda: fit_tfidf_vocabulary(fit_texts, analyzer, ngrams, 100_000), args.repeats)
            our_transform, b = timed(lambda: ours.transform(rows), args.repeats)
            pick = np.random.default_rng(0).integers(0, len(rows), (2, 20_000))
            cosines = [np.asarray(m[pick[0]].multiply(m[pick[1]]).sum(axis=1)).ravel() for m in (a, b)]
            print(
                f"{label:<12}{analyzer:<10}{len(rows):>9}{their_fit:>12.2f}s{their_transform:>10.2f}s"
                f"{our_fit:>9.2f}s{our_transform:>10.2f}s{np.abs(cosines[0] - cosines[1]).max():>13.1e}"
            )


if __name__ == "__main__":
    run_recorded("tfidf", main)
