"""Exercises of lesson 03: search is a matrix product and a top-k; recall measures it.

Q1 writes brute-force top-k, Q2 writes recall@k, Q3 sizes an index in memory.
"""

import torch

from mmlearn.exercises.core import (
    Question,
    function_checker,
    unit_vectors,
    value_checker,
)


def _top_k(query: torch.Tensor, vectors: torch.Tensor, k: int) -> torch.Tensor:
    return torch.topk(vectors @ query, k).indices


def _recall_at_k(ranked: list[list[int]], relevant: list[set[int]], k: int) -> float:
    hits = [bool(set(ids[:k]) & wanted) for ids, wanted in zip(ranked, relevant)]
    return sum(hits) / len(hits)



q1 = Question(
    name="q1",
    variable="top_k",
    checker=function_checker(_top_k, [
        (unit_vectors(8, seed=0), unit_vectors(20, 8, seed=1), 3),
        (unit_vectors(16, seed=2), unit_vectors(500, 16, seed=3), 10),
    ]),
    hint_text="All vectors have length 1, so `vectors @ query` holds every cosine similarity. "
              "`torch.topk(scores, k)` returns the k largest, best first; you want their "
              "`.indices`.",
    solution_text="```python\ndef top_k(query, vectors, k):\n"
                  "    return torch.topk(vectors @ query, k).indices\n```",
)

q2 = Question(
    name="q2",
    variable="recall_at_k",
    checker=function_checker(_recall_at_k, [
        ([[3, 1, 2], [0, 4, 5]], [{1}, {9}], 1),
        ([[3, 1, 2], [0, 4, 5]], [{1}, {9}], 2),
        ([[3, 1, 2], [0, 4, 5], [7, 8, 6]], [{2, 5}, {4}, {6, 7}], 3),
        ([[3, 1, 2], [0, 4, 5], [7, 8, 6]], [{2, 5}, {4}, {6, 7}], 1),
    ]),
    hint_text="For each query, look at its first k ids: is *any* of them relevant? recall@k is "
              "the fraction of queries for which the answer is yes.",
    solution_text="```python\ndef recall_at_k(ranked, relevant, k):\n"
                  "    hits = [bool(set(ids[:k]) & wanted) for ids, wanted in "
                  "zip(ranked, relevant)]\n    return sum(hits) / len(hits)\n```",
)

q3 = Question(
    name="q3",
    variable="index_megabytes",
    checker=value_checker(1_000_000 * 512 * 2 / 1e6, rtol=1e-3),
    hint_text="One float16 number takes 2 bytes. How many numbers does the index hold?",
    solution_text="```python\nindex_megabytes = 1_000_000 * 512 * 2 / 1e6\n```\n1,024 MB on "
                  "disk. While searching on a CPU, mmlearn also keeps a float32 copy (2 GB), "
                  "and every query reads all of it: brute force still works on one laptop at "
                  "a million images, but past that an approximate index (e.g. faiss IVF or "
                  "HNSW) reads only a fraction.",
)
