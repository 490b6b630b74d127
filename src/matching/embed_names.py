"""Stage `embed_names`: the archive's ready `name_bert_64` vectors for the prepared products."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from matching import paths, schema
from matching.embeddings import align, raw_batches_for
from matching.io import load_params, run_stage, write_arrays


def name_vectors(raw_dir: Path, wanted_ids: np.ndarray) -> np.ndarray:
    ids, matrices = [np.empty(0, np.int64)], [np.empty((0, schema.NAME_DIM), np.float32)]
    for label, batch_ids, table in raw_batches_for(raw_dir, "text_and_bert", ["name_bert_64"], wanted_ids):
        ids.append(batch_ids)
        matrices.append(schema.vector_matrix(table.column("name_bert_64"), schema.NAME_DIM, label, "name_bert_64")[0])
    return align(np.concatenate(ids), np.concatenate(matrices), wanted_ids)


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    params = load_params()
    wanted = pd.read_parquet(paths.PRODUCTS, columns=["variantid"])["variantid"].to_numpy(np.int64)
    vectors = name_vectors(Path(params["data"]["raw_dir"]), wanted)
    write_arrays({"variantid": wanted, "vectors": vectors}, paths.embedding_file("names"))
    print(f"embed names: {int((~np.isnan(vectors[:, 0])).sum())} of {len(wanted)} products have name_bert_64")


if __name__ == "__main__":
    run_stage(main)
