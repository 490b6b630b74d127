"""The vectors retrieval searches: chosen embedding blocks of each product, side by side."""

from __future__ import annotations

from collections import deque

import numpy as np

from matching import paths
from matching.encoders.modalities import PRODUCT_VECTORS
from matching.errors import StageError
from matching.parallel import ordered_map

ROW_CHUNK = 65_536  # rows a thread scales at once: the temporaries of a whole block (a GB each) stall


def retrieval_matrix(blocks: list[np.ndarray]) -> np.ndarray:
    """Each block's rows at unit length, side by side, scaled by 1/sqrt(blocks): the inner product of
    two rows is the mean of their blocks' cosines, so no block outweighs another by its width or scale.
    An all-zero row (a product without that field) stays zero. Filled in place (2.25 M x 256 floats
    is 2.3 GB), chunk by chunk on `THREADS` threads; a row's bytes depend on that row alone."""
    if not blocks:
        raise StageError("retrieval.blocks is empty; name at least one of " + ", ".join(PRODUCT_VECTORS))
    matrix = np.zeros((len(blocks[0]), sum(block.shape[1] for block in blocks)), dtype=np.float32)
    columns = np.cumsum([0] + [block.shape[1] for block in blocks])
    scale = np.sqrt(len(blocks))

    def scaled(job: tuple[int, int]) -> None:
        number, start = job
        part = blocks[number][start : start + ROW_CHUNK]
        lengths = np.linalg.norm(part, axis=1, keepdims=True).astype(np.float32) * scale
        out = matrix[start : start + ROW_CHUNK, columns[number] : columns[number + 1]]
        np.divide(part, lengths, out=out, where=lengths > 0)

    jobs = [(number, start) for number in range(len(blocks)) for start in range(0, len(matrix), ROW_CHUNK)]
    deque(ordered_map(scaled, jobs), maxlen=0)
    return matrix


def read_catalog(layout: paths.Layout, blocks: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every product's id and retrieval vector, from the embedding files of the chosen blocks (read side
    by side on `THREADS` threads)."""

    def read(block: str) -> tuple[np.ndarray, np.ndarray]:
        path = layout.embedding_file(block)
        try:
            archive = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as error:  # a cut or foreign file, or one holding Python objects
            raise StageError(f"{path}: not a readable embedding file ({error}); rerun `dvc repro`") from None
        with archive:
            return archive["variantid"], archive[PRODUCT_VECTORS[block]]

    read_blocks = list(ordered_map(read, blocks))
    for block, (block_ids, _) in zip(blocks, read_blocks):
        if not np.array_equal(read_blocks[0][0], block_ids):
            path = layout.embedding_file(block)
            raise StageError(f"{path}: its products differ from the other embedding files'; rerun `dvc repro`")
    ids = read_blocks[0][0] if read_blocks else np.zeros(0, np.int64)
    return ids, retrieval_matrix([vectors for _, vectors in read_blocks])


def block_vectors(embeddings: dict[str, dict[str, np.ndarray]], blocks: list[str]) -> np.ndarray:
    """Retrieval vectors of products already embedded (new cards: modality -> arrays, as the embedding
    files hold them), built as the catalog's are."""
    return retrieval_matrix([embeddings[block][PRODUCT_VECTORS[block]] for block in blocks])
