"""Exact top-k by brute force: score every stored vector, keep the k best.

``ImageIndex.topk`` calls one of two functions here, because one query and many
queries are limited by different things:

- ``top_k_one_query``: one query does only two operations per number it reads, so it
  reads as few bytes as it can: the float16 vectors directly (half the bytes of float32;
  how fast that is against faiss: benchmarks/README.md), and then it makes the float16
  rounding harmless: see there.
- ``top_k_many``: a batch does hundreds of operations per number read, so arithmetic
  dominates, and CPUs multiply float32 fastest (most have no fast float16 arithmetic).
  It multiplies a float32 copy, block by block of the collection.

Both return exactly what scoring every vector in float32 and sorting would return,
ties (identical vectors) in the order of their ids (tests/test_brute_force.py).
"""

import functools

import numpy as np
import torch

from mmlearn.config import one_cpu_thread

SCORES_PER_BLOCK = 8_000_000  # float32 scores held at once per thread: 32 MB
GROUP = 100  # columns per group in best_k_of_rows


def first_k(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k highest scores along the last dimension, best first, equal ones by position.

    ``torch.topk`` returns equal scores in no promised order; a stable sort keeps them in
    the order they come (here: by id), so one query alone and in a batch agree.
    """
    values, positions = torch.sort(scores, dim=-1, descending=True, stable=True)
    return values[..., :k], positions[..., :k]


def float16_error(query: torch.Tensor) -> float:
    """The largest possible |float16 score - float32 score| of ``query`` and a stored vector.

    Three roundings make up the float16 score of a unit vector x: the query rounded to
    float16 (each product moves by at most 2^-11 of itself), the sum, added in float32
    (at most dim x 2^-24 of the sum of |products|), and the result rounded to float16
    (2^-11 of it). Each is bounded by |query| |x| (Cauchy-Schwarz), and |x| is 1 up to
    its own float16 rounding (the 1.01).
    """
    return 1.01 * float(query.norm()) * (2 * 2.0**-11 + len(query) * 2.0**-24)


def top_k_one_query(query: torch.Tensor, vectors: torch.Tensor,
                    k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k of one float32 ``query`` [D] over float16 unit ``vectors`` [N, D].

    Ranking by float16 scores could swap two images whose true scores differ by less
    than the rounding. So: rank by float16 scores, keep every image within twice the
    largest rounding error (``float16_error``) of the k-th best, and score that short
    list again in float32. No true top-k image is left out: its float16 score is at
    most one error below its true score, which is at least the true k-th score, which
    is at least the float16 k-th score minus one error.
    Returns ``(scores [1, k], ids [1, k])``, best first.
    """
    rough = torch.mv(vectors, query.half()).float()
    kth_best = torch.topk(rough, k).values[-1]
    shortlist = (rough >= kth_best - 2 * float16_error(query)).nonzero().flatten()
    exact = vectors[shortlist].float() @ query
    scores, order = first_k(exact, k)
    return scores[None], shortlist[order][None]


@functools.cache
def float16_adds_in_float32(dim: int) -> bool:
    """Does torch's float16 matrix-vector product on this machine add in float32?

    ``float16_error`` assumes it does (x86 CPUs convert float16 to float32 to compute;
    an ARM kernel may add in float16). Checked once per dimension on rows of +1s and -1s
    that cancel, with small values of 2^-13 mixed in: added in float32 every row sums to
    exactly (number of small values) x 2^-13; a float16 sum drops each small value it
    adds to a running total of 1 or more.
    """
    if dim < 4:
        return False
    generator = torch.Generator().manual_seed(0)
    pairs, small = dim // 4, dim - 2 * (dim // 4)
    row = torch.tensor([1.0] * pairs + [-1.0] * pairs + [2.0**-13] * small)
    rows = torch.stack([row[torch.randperm(dim, generator=generator)] for _ in range(256)])
    sums = torch.mv(rows.half(), torch.ones(dim, dtype=torch.float16)).float()
    return bool((sums == small * 2.0**-13).all())


def best_k_of_rows(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``first_k(scores, k)`` of each row, without sorting whole rows.

    ``torch.topk`` finds the k best, but keeps equal scores in no promised order: the k
    found are put in id order among equals, and a row where the k-th place is shared
    with a score that was left out is sorted in full (``first_k``); that needs exact ties.
    Long rows are cut into groups of ``GROUP`` columns and only each group's maximum is
    compared at first. The k best scores lie in the k groups with the highest maxima
    (a score in any other group is beaten by those k maxima), so ``topk`` then looks at
    k x GROUP columns instead of the whole row.
    """
    rows, columns = scores.shape
    usable = columns - columns % GROUP
    shared_kth = torch.zeros(rows, dtype=torch.bool)
    if usable >= 4 * GROUP * k:
        group_best = scores[:, :usable].view(rows, -1, GROUP).amax(dim=2)
        best_groups = torch.topk(group_best, k, dim=1)
        shared_kth |= (group_best >= best_groups.values[:, -1:]).sum(dim=1) > k
        candidates = (best_groups.indices[:, :, None] * GROUP + torch.arange(GROUP)).flatten(1)
        tail = torch.arange(usable, columns).expand(rows, -1)  # columns not in a whole group
        candidates = torch.cat([candidates, tail], dim=1)
        candidate_scores = scores.gather(1, candidates)
    else:
        candidates, candidate_scores = None, scores
    values, picks = torch.topk(candidate_scores, k, dim=1)
    shared_kth |= (candidate_scores >= values[:, -1:]).sum(dim=1) > k
    ids = picks if candidates is None else candidates.gather(1, picks)
    ids = ids.sort(dim=1).values                        # id order, then best first:
    values, order = first_k(scores.gather(1, ids), k)   # equal scores stay in id order
    ids = ids.gather(1, order)
    if shared_kth.any():
        values[shared_kth], ids[shared_kth] = first_k(scores[shared_kth], k)
    return values, ids


_scores_buffer = np.empty(0, dtype=np.float32)


def scores_buffer(size: int) -> np.ndarray:
    """A float32 array of at least ``size`` numbers, made once and reused by every search.

    Why not a new array per block: the system hands a fresh large array over as new
    memory pages, and setting them up made batched search up to 1.5x slower here
    (benchmarks/README.md). The buffer is at most ``SCORES_PER_BLOCK`` x threads numbers
    (32 MB per thread) and lives as long as the process. One search at a time: two
    threads searching at once would write into the same buffer.
    """
    global _scores_buffer
    if _scores_buffer.size < size:
        _scores_buffer = np.empty(size, dtype=np.float32)
    return _scores_buffer


def top_k_many(queries: torch.Tensor, matrix: torch.Tensor,
               k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of each float32 query [Q, D] over the rows of a float32 ``matrix`` [N, D].

    The collection is scored block by block, each block read once for all queries, so
    the scores held at once stay under ``SCORES_PER_BLOCK`` per thread however large it
    is (blocks of that size were the fastest at 1 and 2 threads, benchmarks/README.md); a
    running best k is merged with each block's. The multiply is numpy's: its BLAS
    (OpenBLAS, or Accelerate on a Mac) was faster than torch's here, and it writes into
    one reused buffer (``scores_buffer``). The selection runs on one torch thread: numpy's
    BLAS threads are still spinning between blocks, and torch's would fight them.
    """
    rows = max(k, SCORES_PER_BLOCK * torch.get_num_threads() // len(queries))
    buffer = scores_buffer(len(queries) * min(rows, len(matrix)))
    best_scores = torch.empty(len(queries), 0)
    best_ids = torch.empty(len(queries), 0, dtype=torch.long)
    with one_cpu_thread():
        for start in range(0, len(matrix), rows):
            block = matrix[start:start + rows].numpy()
            scores = buffer[:len(queries) * len(block)].reshape(len(queries), len(block))
            np.matmul(queries.numpy(), block.T, out=scores)
            block_scores, block_ids = best_k_of_rows(torch.from_numpy(scores), min(k, len(block)))
            best_scores = torch.cat([best_scores, block_scores], dim=1)
            best_ids = torch.cat([best_ids, block_ids + start], dim=1)
            if best_scores.shape[1] > k:
                best_scores, order = first_k(best_scores, k)
                best_ids = best_ids.gather(1, order)
    return best_scores, best_ids
