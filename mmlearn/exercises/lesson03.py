"""Exercises of lesson 03: search is a matrix product and a top-k; recall measures it.

Q1 predicts, before the lesson measures it, which queries reach the higher recall;
Q2 builds image-to-image search (the lesson then measures it on queries the learner
picks); Q3 writes recall@k; Q4 sizes an index in memory.
"""

import functools
from typing import Any

import torch

from mmlearn.exercises.core import (
    Incorrect,
    NotAttempted,
    Question,
    choice_checker,
    function_checker,
    value_checker,
)

# ---------------------------------------------------------------------------- Q2


@functools.lru_cache(maxsize=1)
def _test_index():
    """A small ShapeWorld index built with the course CLIP, and three query pictures."""
    from mmlearn import search, shapes
    from mmlearn.clip import load_clip

    clip = load_clip("course", "cpu", verbose=False)
    collection = shapes.ShapeWorld(300, "all", seed=21)
    index = search.ImageIndex.build(clip, collection, batch_size=150, progress=False)
    queries = [collection[5][0], shapes.draw("orange", "diamond", size="small", position="right"),
               shapes.draw("green", "star")]
    return index, queries


def _as_ids(answer: Any, k: int) -> list[int]:
    if isinstance(answer, torch.Tensor):
        if answer.is_floating_point():
            raise Incorrect("your function returned floating-point numbers; return the *ids* "
                            "of the pictures (integers), not their scores.")
        answer = answer.flatten().tolist()
    try:
        ids = [int(i) for i in answer]
    except (TypeError, ValueError):
        raise Incorrect(f"return a list (or tensor) of {k} integer ids, best first; got "
                        f"{type(answer).__name__}.") from None
    if len(ids) != k:
        raise Incorrect(f"asked for k={k} results, your function returned {len(ids)}.")
    return ids


def _check_search_by_image(fn: Any) -> None:
    """Ids must be a true top-k of the index for the picture, ordered best first."""
    if not callable(fn):
        raise Incorrect(f"expected a function, got a {type(fn).__name__}.")
    index, queries = _test_index()
    matrix = index.search_matrix()
    for number, (image, k) in enumerate(zip(queries, (1, 5, 10)), start=1):
        try:
            answer = fn(index, image, k)
        except NotImplementedError:
            raise NotAttempted() from None
        except Exception as error:  # the learner's bug, reported as feedback
            raise Incorrect(f"on query picture {number} your function raised "
                            f"{type(error).__name__}: {error}") from None
        ids = _as_ids(answer, k)
        if not all(0 <= i < len(index) for i in ids):
            raise Incorrect(f"on query picture {number} some ids are not rows of the index "
                            f"(0 to {len(index) - 1}).")
        scores = matrix @ index.embed_queries(image)[0]
        best = scores.topk(k).values
        got = scores[ids]
        if (got[1:] > got[:-1] + 1e-3).any():
            raise Incorrect(f"on query picture {number} the results are not in order: the "
                            f"most similar picture must come first.")
        if (got - best).abs().max() > 1e-3:
            raise Incorrect(f"on query picture {number} your {k} results are not the {k} "
                            f"pictures most similar to it. Compare image with image: both "
                            f"vectors must come from the image encoder.")


# ---------------------------------------------------------------------------- Q3


def _recall_at_k(ranked: list[list[int]], relevant: list[set[int]], k: int) -> float:
    hits = [bool(set(ids[:k]) & wanted) for ids, wanted in zip(ranked, relevant)]
    return sum(hits) / len(hits)


q1 = Question(
    name="q1",
    variable="prediction_recall",
    checker=choice_checker("a", "abc", why_not={
        "b": "an exact caption counts as right only the few pictures that carry that very "
             "text, although many more show the same thing. Run the cell below and compare.",
        "c": "count the right answers of each kind of query: about 80 pictures for a class "
             "name (3,000 / 36), a handful for an exact caption. Run the cell below."}),
    hint_text="For each kind of query, how many pictures of the 3,000 count as a right answer? "
              "The more right answers there are, the easier it is to have one at rank 1.",
    solution_text="```python\nprediction_recall = \"a\"\n```\nA class-name query has about "
                  "80 right pictures (3,000 / 36); an exact caption has only the few pictures "
                  "that carry that identical text, although many others show the same thing. "
                  "What counts as right decides the number.",
)

q2 = Question(
    name="q2",
    variable="search_by_image",
    checker=_check_search_by_image,
    hint_text="Three steps, all in the lesson above: turn the picture into a unit vector with "
              "the image encoder the index was built with (`index.encoder`); score every "
              "stored vector against it (`index.vectors` is float16: compute in float32); "
              "keep the ids of the k largest scores, best first.",
    solution_text="```python\ndef search_by_image(index, image, k):\n"
                  "    query = index.encoder.encode_images([image])[0]      # unit vector [D]\n"
                  "    scores = index.vectors.float() @ query               # cosine, one per "
                  "image\n"
                  "    return scores.topk(k).indices.tolist()\n```\n"
                  "`index.search(image, k)` does the same, in blocks, for many queries at once.",
)

q3 = Question(
    name="q3",
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

q4 = Question(
    name="q4",
    variable="index_megabytes",
    checker=value_checker(5_000_000 * 768 * 2 / 1e6, rtol=1e-3),
    hint_text="One float16 number takes 2 bytes. How many numbers does the index hold? A "
              "megabyte here is 10^6 bytes.",
    solution_text="```python\nindex_megabytes = 5_000_000 * 768 * 2 / 1e6\n```\n7,680 MB on "
                  "disk. While searching on a CPU, mmlearn also keeps a float32 copy (15,360 MB), "
                  "and every query reads all of it: past what one machine's memory holds, an "
                  "approximate index (e.g. faiss IVF or HNSW, or product quantisation) reads "
                  "only a fraction, and a larger collection is split across machines.",
)
