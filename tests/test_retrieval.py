"""Candidate retrieval: the vectors searched, exact search, a query's candidates, recall figures."""

import numpy as np
import pandas as pd
import pytest

from matching.errors import StageError
from matching.retrieval import exact
from matching.retrieval.candidates import candidate_table, without_self
from matching.retrieval.recall import hits, overlap_at, recall_at, true_matches
from matching.retrieval.vectors import retrieval_matrix


def test_inner_product_of_retrieval_vectors_is_the_mean_cosine_of_their_blocks():
    names = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 0.0]])
    photos = np.array([[0.0, 2.0, 0.0], [0.0, 1.0, 1.0], [5.0, 0.0, 0.0]])
    matrix = retrieval_matrix([names, photos])
    assert matrix.shape == (3, 5) and matrix.dtype == np.float32
    assert matrix[0] @ matrix[1] == pytest.approx((0.6 + 1 / np.sqrt(2)) / 2)
    assert matrix[2, :2].tolist() == [0.0, 0.0]  # a product without a name stays without one
    with pytest.raises(StageError, match="retrieval.blocks"):
        retrieval_matrix([])


def test_exact_search_finds_the_largest_inner_products_across_catalog_blocks(monkeypatch):
    rng = np.random.default_rng(0)
    catalog, queries = rng.normal(size=(50, 4)).astype(np.float32), rng.normal(size=(6, 4)).astype(np.float32)
    expected = np.argsort(-(queries @ catalog.T), axis=1, kind="stable")[:, :5]
    monkeypatch.setattr(exact, "CATALOG_BLOCK", 7)  # the best-so-far merge across 8 blocks
    rows, scores = exact.exact_neighbours(catalog, queries, 5)
    assert rows.tolist() == expected.tolist()
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ catalog.T, expected, 1), rtol=1e-6)
    rows, _ = exact.exact_neighbours(catalog[:3], queries, 5)  # fewer products than k: empty slots last
    assert (rows[:, 3:] == -1).all() and sorted(rows[0, :3]) == [0, 1, 2]


def test_a_product_is_never_its_own_candidate_and_the_order_is_kept():
    queries = np.array([10, 20, 30])
    found = np.array([[10, 11, 12], [21, 20, 22], [31, 32, -1]])
    scores = np.array([[1.0, 0.9, 0.8], [0.9, 0.8, 0.7], [0.5, 0.4, np.nan]])
    ids, kept = without_self(queries, found, scores, 2)
    assert ids.tolist() == [[11, 12], [21, 22], [31, 32]]
    np.testing.assert_allclose(kept, [[0.9, 0.8], [0.9, 0.7], [0.5, 0.4]])
    table = candidate_table(queries, *without_self(queries, found, scores, 3))
    assert table.columns.tolist() == ["query_id", "candidate_id", "rank", "ann_score"]
    assert table[table.query_id == 30].candidate_id.tolist() == [31, 32] and table["rank"].max() == 2
    assert not (table.query_id == table.candidate_id).any()


def test_recall_at_k_counts_each_known_match_found_within_k():
    pairs = pd.DataFrame({"variantid1": [1, 1, 2, 5], "variantid2": [2, 3, 3, 5], "target": [1, 1, 0, 1]})
    matches = true_matches(pairs)  # 1-2, 1-3 both ways; the self pair 5-5 and the negative 2-3 are no match
    assert sorted(map(tuple, matches.to_numpy())) == [(1, 2), (1, 3), (2, 1), (3, 1)]
    queries = np.array([1, 2, 3])
    neighbours = np.array([[7, 2, 8], [1, 9, 9], [9, 8, 7]])  # 1 finds 2 at rank 2, misses 3; 2 finds 1 first
    ranks = hits(queries, neighbours, matches)
    assert sorted(ranks.tolist()) == [-1, -1, 0, 1]
    assert recall_at(ranks, [1, 2, 3]) == {"recall_at_1": 0.25, "recall_at_2": 0.5, "recall_at_3": 0.5}
    # only the asked queries' matches count: 1 asked alone, both its matches found
    assert recall_at(hits(np.array([1]), np.array([[2, 3, 9]]), matches), [1, 3]) == {
        "recall_at_1": 0.5,
        "recall_at_3": 1.0,
    }


def test_index_recall_against_exact_search_is_the_share_of_exact_neighbours_returned():
    exact_rows = np.array([[1, 2, 3], [4, 5, -1]])
    approximate = np.array([[1, 9, 3], [5, 4, 8]])
    assert overlap_at(approximate, exact_rows, 3) == pytest.approx(4 / 5)
    assert overlap_at(approximate, exact_rows, 1) == pytest.approx(1 / 2)


def clustered_catalog(products=400, dims=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dims))
    vectors = centres[rng.integers(0, 20, products)] + 0.3 * rng.normal(size=(products, dims))
    return np.arange(1000, 1000 + products), retrieval_matrix([vectors.astype(np.float32)])


def test_the_index_scanning_every_list_finds_what_exact_search_finds(tmp_path):
    from matching.retrieval.index import CatalogIndex

    ids, vectors = clustered_catalog()
    index = CatalogIndex.build(ids, vectors, None, "Flat", seed=1, settings={"blocks": ["names"]})
    assert index.settings["factory"] == "IVF10,Flat"  # 2 x sqrt(400) = 40, but 400 products train 10 lists of 40
    found, scores = index.search(vectors[:30], 5, probes=10, rerank=1)
    exact_rows, _ = exact.exact_neighbours(vectors, vectors[:30], 5)
    assert overlap_at(found, ids[exact_rows], 5) == 1.0
    assert (found[:, 0] == ids[:30]).all() and (np.diff(scores, axis=1) <= 1e-6).all()
    few, _ = index.search(vectors[:30], 5, probes=1, rerank=1)  # one list: a subset of the catalog, still real products
    assert np.isin(few[few >= 0], ids).all()


def test_the_index_is_saved_in_faiss_format_and_the_same_vectors_give_the_same_bytes(tmp_path):
    from matching.retrieval.index import CatalogIndex

    ids, vectors = clustered_catalog()
    for folder in ("a", "b"):
        CatalogIndex.build(ids, vectors, 8, "PQ8x4fs,RFlat", seed=1, settings={"blocks": ["names"]}).save(
            tmp_path / folder
        )
    assert (tmp_path / "a" / "index.faiss").read_bytes() == (tmp_path / "b" / "index.faiss").read_bytes()
    loaded = CatalogIndex.load(tmp_path / "a")
    assert loaded.settings == {"blocks": ["names"], "factory": "IVF8,PQ8x4fs,RFlat", "products": 400, "dims": 8}
    assert loaded.search(vectors[:3], 2, probes=8, rerank=10)[0][:, 0].tolist() == ids[:3].tolist()
    with pytest.raises(StageError, match="retrieval.encoding is .PQ7., which faiss cannot build for 8 dims"):
        CatalogIndex.build(ids, vectors, 8, "PQ7", seed=1, settings={})
    with pytest.raises(StageError, match=r"nowhere: no index \(index.faiss, ids.npy, index.json missing\); build it"):
        CatalogIndex.load(tmp_path / "nowhere")


def test_probes_and_reranking_beyond_the_index_search_the_whole_index_instead_of_overflowing():
    from matching.retrieval.index import CatalogIndex
    from matching.schema import INT_MAX

    ids, vectors = clustered_catalog()
    index = CatalogIndex.build(ids, vectors, 8, "PQ8x4fs,RFlat", seed=1, settings={"blocks": ["names"]})
    whole = index.search(vectors[:20], 5, probes=8, rerank=-(-len(ids) // 5))  # every list, every product re-ranked
    beyond = index.search(vectors[:20], 5, probes=INT_MAX, rerank=INT_MAX)
    np.testing.assert_array_equal(beyond[0], whole[0])
    np.testing.assert_array_equal(beyond[1], whole[1])


@pytest.mark.parametrize("encoding", ["PQ8x4fs,RFlat", "PQ4x4fs", "Flat", "SQ8"])
def test_the_index_adds_in_chunks_on_threads_what_faiss_adds_on_one_thread(monkeypatch, encoding):
    import faiss

    from matching import parallel
    from matching.retrieval import index as index_module

    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(5000, 8)).astype(np.float32)
    vectors[::50] = 0  # products without the vectors' fields
    trained = faiss.index_factory(8, f"IVF16,{encoding}", faiss.METRIC_INNER_PRODUCT)
    trained.train(vectors[:1000])
    one_thread = faiss.clone_index(trained)
    faiss.omp_set_num_threads(1)
    one_thread.add(vectors)
    monkeypatch.setattr(index_module, "ADD_CHUNK", 4096)  # two chunks, the second short
    for threads in (1, 3):
        monkeypatch.setattr(parallel, "THREADS", threads)
        chunked = faiss.clone_index(trained)
        index_module.add_in_chunks(chunked, vectors)
        assert chunked.ntotal == len(vectors)
        assert bytes(faiss.serialize_index(chunked)) == bytes(faiss.serialize_index(one_thread))


@pytest.mark.parametrize("subquantizers", [1, 3, 16, 32])
def test_fast_scan_blocks_packed_by_one_gather_are_faiss_packing_block_by_block(subquantizers):
    import faiss

    from matching.retrieval.index import nibble_sources, packed_in_blocks

    dims = 2 * subquantizers
    index = faiss.index_factory(dims, f"IVF4,PQ{subquantizers}x4fs", faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.extract_index_ivf(index)  # a view into `index`, which must outlive it
    packer = faiss.downcast_InvertedLists(ivf.invlists).packer
    sources = nibble_sources(packer)
    assert sources is not None
    codes = np.random.default_rng(subquantizers).integers(0, 256, (3 * packer.nvec + 5, ivf.code_size), np.uint8)
    codes[:, -1] &= 15 if subquantizers % 2 else 255  # an odd count leaves the last byte's high half empty
    gathered = packed_in_blocks(codes, packer, sources)
    assert gathered.shape == (4, packer.block_size)
    np.testing.assert_array_equal(gathered, packed_in_blocks(codes, packer, None))


def test_retrieval_vectors_are_the_same_bytes_in_chunks_on_any_thread_count(monkeypatch):
    from matching import parallel
    from matching.retrieval import vectors as vectors_module

    rng = np.random.default_rng(4)
    names, photos = rng.normal(size=(1000, 4)).astype(np.float32), rng.normal(size=(1000, 6)).astype(np.float32)
    names[::7] = 0
    whole = retrieval_matrix([names, photos])
    monkeypatch.setattr(vectors_module, "ROW_CHUNK", 64)
    for threads in (1, 3):
        monkeypatch.setattr(parallel, "THREADS", threads)
        assert retrieval_matrix([names, photos]).tobytes() == whole.tobytes()
    assert not whole[::7, :4].any() and np.allclose(np.linalg.norm(whole[1:7], axis=1), 1.0)


def test_a_query_the_catalog_lacks_is_named_in_one_line():
    from matching.errors import DataError
    from matching.retrieval.candidates import catalog_rows

    assert catalog_rows(np.array([5, 3, 9]), np.array([9, 5]), "queries.csv").tolist() == [2, 0]
    with pytest.raises(DataError, match=r"^queries.csv: product 7 is not in the catalog \(2 unknown of 3\)"):
        catalog_rows(np.array([5, 3, 9]), np.array([9, 7, 8]), "queries.csv")


def test_the_catalog_joins_blocks_of_the_same_products_and_names_a_file_that_disagrees(tmp_path):
    from matching import paths
    from matching.retrieval.vectors import read_catalog

    layout = paths.Layout(tmp_path)
    layout.embeddings.mkdir(parents=True)
    ids = np.array([7, 3, 9])
    np.savez(layout.embedding_file("names"), variantid=ids, vectors=np.eye(3, 4, dtype=np.float32))
    np.savez(layout.embedding_file("photos"), variantid=ids, main=2 * np.eye(3, 5, dtype=np.float32))
    found, vectors = read_catalog(layout, ["names", "photos"])
    assert found.tolist() == [7, 3, 9] and vectors.shape == (3, 9)
    np.testing.assert_allclose(vectors @ vectors.T, np.eye(3), atol=1e-6)  # each block at unit length, halved
    np.savez(layout.embedding_file("photos"), variantid=ids[::-1], main=np.eye(3, 5, dtype=np.float32))
    with pytest.raises(StageError, match="photos.npz: its products differ"):
        read_catalog(layout, ["names", "photos"])


@pytest.mark.parametrize("encoding", ["Flat", "PQ8x4fs,RFlat"])
def test_a_catalog_products_vector_comes_back_from_the_index(encoding):
    from matching.retrieval.index import CatalogIndex

    ids, vectors = clustered_catalog()
    index = CatalogIndex.build(ids, vectors, 8, encoding, seed=1, settings={})
    np.testing.assert_allclose(index.vectors(np.array([5, 399, 0])), vectors[[5, 399, 0]], atol=1e-6)
    stored = index.stored_vectors()  # every row at once, where the index keeps the full vectors
    assert (stored is None) if encoding == "Flat" else np.array_equal(stored, vectors)


def test_matches_are_ranked_by_the_candidate_models_probability_then_the_index_score():
    from matching.retrieval.matches import MATCH_COLUMNS, ranked

    candidates = pd.DataFrame(
        {
            "query_id": [1, 1, 1, 2],
            "candidate_id": [5, 6, 7, 8],
            "rank": [1, 2, 3, 1],
            "ann_score": [0.9, 0.8, 0.7, 0.5],
        }
    )
    matches = ranked(candidates, np.array([0.2, 0.9, 0.2, 0.4]), np.array([False, True, False, False]))
    assert matches.columns.tolist() == MATCH_COLUMNS
    assert matches.candidate_id.tolist() == [6, 5, 7, 8] and matches["rank"].tolist() == [1, 2, 3, 1]
    assert matches.predicted_match.tolist() == [True, False, False, False]  # the decision travels with its row


def test_new_cards_and_catalog_products_are_joined_once_each_sorted_with_their_own_photos():
    from matching.scoring.products import NewProducts, joined

    def products(ids, tag, photo_counts):
        ids = np.asarray(ids, dtype=np.int64)
        counts = np.asarray(photo_counts, dtype=np.int32)
        starts = np.cumsum(counts) - counts
        photos = np.repeat(np.asarray(ids, dtype=np.float16)[:, None], counts, axis=0)  # each photo says its owner
        return NewProducts(
            pd.DataFrame({"variantid": ids, "name": [f"{tag}{i}" for i in ids]}),
            {"names": {"variantid": ids, "vectors": np.column_stack([ids, np.full(len(ids), tag == "card")])}},
            {"variantid": ids, "starts": starts, "counts": counts, "has_main": counts > 0, "photos": photos},
        )

    both = joined(products([5, 2], "card", [1, 2]), products([3, 5, 9], "catalog", [2, 0, 1]))
    assert both.products.variantid.tolist() == [2, 3, 5, 9]
    assert both.products.name.tolist() == ["card2", "catalog3", "card5", "catalog9"]  # 5 is the card's
    names = both.embeddings["names"]
    assert names["variantid"].tolist() == [2, 3, 5, 9] and names["vectors"].tolist() == [[2, 1], [3, 0], [5, 1], [9, 0]]
    sets = both.photo_sets
    assert sets["variantid"].tolist() == [2, 3, 5, 9] and sets["counts"].tolist() == [2, 2, 1, 1]
    owners = [sets["photos"][start : start + count, 0].tolist() for start, count in zip(sets["starts"], sets["counts"])]
    assert owners == [[2, 2], [3, 3], [5], [9]]
