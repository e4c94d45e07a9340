"""mmlearn.brute_force: every path returns the exact top-k, including near-ties."""

import numpy as np
import pytest
import torch

from mmlearn import brute_force
from mmlearn.search import ImageIndex


def near_ties(n: int = 3000, dim: int = 512, close: int = 40, seed: int = 0):
    """A query and float16 unit vectors of which ``close`` score within ~1e-3 of each other.

    Their float16 scores collide (float16 steps near 0.9 are 4.9e-4 apart), so ranking by
    float16 scores alone would order them wrongly.
    """
    generator = torch.Generator().manual_seed(seed)
    query = torch.nn.functional.normalize(torch.randn(dim, generator=generator), dim=0)
    vectors = torch.nn.functional.normalize(torch.randn(n, dim, generator=generator), dim=1)
    others = vectors[:close] - (vectors[:close] @ query)[:, None] * query  # orthogonal parts
    others = torch.nn.functional.normalize(others, dim=1)
    cosines = 0.9 + 1e-3 * torch.rand(close, generator=generator)
    vectors[:close] = cosines[:, None] * query + (1 - cosines[:, None] ** 2).sqrt() * others
    return query, vectors.half()


def exact_scores(query: torch.Tensor, vectors: torch.Tensor) -> np.ndarray:
    return vectors.double().numpy() @ query.double().numpy()


def assert_exact_top_k(scores, ids, query, vectors, k):
    truth = exact_scores(query, vectors)
    best = np.sort(truth)[::-1][:k]
    assert np.allclose(np.sort(truth[ids.numpy()])[::-1], best, atol=1e-6, rtol=0)
    assert np.allclose(scores.numpy(), truth[ids.numpy()], atol=1e-5, rtol=0)
    assert (np.diff(scores.numpy()) <= 1e-6).all(), "not best first"


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 5, 10, 30])
def test_one_query_is_exact_on_near_ties(seed, k):
    query, vectors = near_ties(seed=seed)
    scores, ids = brute_force.top_k_one_query(query, vectors, k)
    assert scores.shape == ids.shape == (1, k)
    assert_exact_top_k(scores[0], ids[0], query, vectors, k)


@pytest.mark.slow
def test_near_ties_catch_ranking_by_float16_scores_alone():
    """Planted: the obvious fast search (topk of the float16 scores) fails these tests."""
    wrong = 0
    for seed in range(5):
        query, vectors = near_ties(seed=seed)
        for k in (5, 10, 30):
            rough = torch.mv(vectors, query.half()).float()
            scores, ids = torch.topk(rough, k)
            try:
                assert_exact_top_k(scores, ids, query, vectors, k)
            except AssertionError:
                wrong += 1
    assert wrong >= 10


def test_float16_error_bounds_the_real_error():
    for seed in range(5):
        query, vectors = near_ties(seed=seed)
        rough = torch.mv(vectors, query.half()).double().numpy()
        error = np.abs(rough - exact_scores(query, vectors)).max()
        assert error <= brute_force.float16_error(query)


def test_the_probe_tells_float32_sums_from_float16_sums(monkeypatch):
    assert brute_force.float16_adds_in_float32(512)  # x86 and ARM kernels of torch 2.x
    assert brute_force.float16_adds_in_float32(64)

    def float16_sums(matrix, vector):  # a kernel that adds in float16, one product at a time
        total = torch.zeros(len(matrix), dtype=torch.float16)
        for column in (matrix * vector).T:
            total = total + column
        return total

    monkeypatch.setattr(torch, "mv", float16_sums)
    brute_force.float16_adds_in_float32.cache_clear()
    try:
        assert not brute_force.float16_adds_in_float32(512)
        assert not brute_force.float16_adds_in_float32(64)
    finally:
        monkeypatch.undo()
        brute_force.float16_adds_in_float32.cache_clear()


@pytest.mark.parametrize("columns", [7, 999, 4000, 10_037])
@pytest.mark.parametrize("k", [1, 3, 10])
def test_best_k_of_rows_equals_topk(columns, k):
    k = min(k, columns)
    scores = torch.randn(6, columns, generator=torch.Generator().manual_seed(columns))
    values, ids = brute_force.best_k_of_rows(scores, k)
    expected = torch.topk(scores, k, dim=1)
    assert torch.equal(values, expected.values)
    assert torch.equal(scores.gather(1, ids), expected.values)


def test_equal_scores_come_by_id_in_every_path(monkeypatch, one_thread):
    vectors = torch.nn.functional.normalize(torch.randn(5000, 64), dim=1)
    vectors[::7] = vectors[3]  # 715 copies of one vector: ids 0, 3, 7, 14, ...
    query = vectors[3].clone()
    wanted = sorted({0, 3, *range(7, 5000, 7)})[:10]
    _, one = brute_force.top_k_one_query(query, vectors.half(), 10)
    _, many = brute_force.top_k_many(torch.stack([query, query]), vectors.half().float(), 10)
    assert one[0].tolist() == wanted
    assert many[0].tolist() == many[1].tolist() == wanted
    monkeypatch.setattr(brute_force, "SCORES_PER_BLOCK", 2 * 999)  # blocks of 999 rows
    assert brute_force.top_k_many(query[None], vectors.half().float(), 10)[1][0].tolist() == wanted


def test_best_k_of_rows_finds_a_best_group_holding_all_k():
    scores = torch.zeros(1, 5000)
    scores[0, 1200:1210] = torch.arange(1.0, 11.0)  # all ten best in one group
    _, ids = brute_force.best_k_of_rows(scores, 10)
    assert ids[0].tolist() == list(range(1209, 1199, -1))


@pytest.mark.parametrize("per_block", [16_000_000, 7 * 37, 1])
def test_many_queries_in_blocks_are_exact(monkeypatch, per_block, one_thread):
    monkeypatch.setattr(brute_force, "SCORES_PER_BLOCK", per_block)
    query, vectors = near_ties(n=1301)
    queries = torch.stack([query, *torch.nn.functional.normalize(
        torch.randn(6, 512, generator=torch.Generator().manual_seed(3)), dim=1)])
    scores, ids = brute_force.top_k_many(queries, vectors.float(), 10)
    for row, q in enumerate(queries):
        assert_exact_top_k(scores[row], ids[row], q, vectors, 10)


def test_index_falls_back_to_float32_when_float16_sums_are_not_float32(monkeypatch):
    index = ImageIndex(encoder_name="vectors")
    query, vectors = near_ties(n=2000)
    index.add_vectors(vectors.float())
    fast = index.topk(query[None], 10)
    monkeypatch.setattr(brute_force, "float16_adds_in_float32", lambda dim: False)
    slow = index.topk(query[None], 10)
    assert torch.equal(fast[1], slow[1])
    assert torch.allclose(fast[0], slow[0], atol=1e-6)
