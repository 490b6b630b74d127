"""The vectors retrieval searches: chosen embedding blocks of each product, side by side."""

from __future__ import annotations

import numpy as np

from matching import paths
from matching.encoders.modalities import PRODUCT_VECTORS
from matching.errors import StageError


def retrieval_matrix(blocks: list[np.ndarray]) -> np.ndarray:
    """Each block's rows at unit length, side by side, scaled by 1/sqrt(blocks): the inner product of
    two rows is the mean of their blocks' cosines, so no block outweighs another by its width or scale.
    An all-zero row (a product without that field) stays zero. Filled in place: 2.25 M x 256 floats
    is 2.3 GB."""
    if not blocks:
        raise StageError("retrieval.blocks is empty; name at least one of " + ", ".join(PRODUCT_VECTORS))
    matrix = np.zeros((len(blocks[0]), sum(block.shape[1] for block in blocks)), dtype=np.float32)
    column = 0
    for block in blocks:
        width = block.shape[1]
        lengths = np.linalg.norm(block, axis=1, keepdims=True).astype(np.float32) * np.sqrt(len(blocks))
        np.divide(block, lengths, out=matrix[:, column : column + width], where=lengths > 0)
        column += width
    return matrix


def read_catalog(layout: paths.Layout, blocks: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every product's id and retrieval vector, from the embedding files of the chosen blocks."""
    ids = np.zeros(0, np.int64)
    parts: list[np.ndarray] = []
    for block in blocks:
        path = layout.embedding_file(block)
        try:
            archive = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as error:  # a cut or foreign file, or one holding Python objects
            raise StageError(f"{path}: not a readable embedding file ({error}); rerun `dvc repro`") from None
        with archive:
            block_ids = archive["variantid"]
            if parts and not np.array_equal(ids, block_ids):
                raise StageError(f"{path}: its products differ from the other embedding files'; rerun `dvc repro`")
            ids = block_ids
            parts.append(archive[PRODUCT_VECTORS[block]])
    return ids, retrieval_matrix(parts)


def block_vectors(embeddings: dict[str, dict[str, np.ndarray]], blocks: list[str]) -> np.ndarray:
    """Retrieval vectors of products already embedded (new cards: modality -> arrays, as the embedding
    files hold them), built as the catalog's are."""
    return retrieval_matrix([embeddings[block][PRODUCT_VECTORS[block]] for block in blocks])
