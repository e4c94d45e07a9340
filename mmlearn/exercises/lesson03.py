"""Exercises of lesson 03: search is a matrix product and a top-k; recall measures it.

Q1 (build, 3 points): ``search_by_image(index, image, k)``, the ids of the k pictures most
similar to a picture, best first: the learner writes the matrix product and the top-k
(the index's own search, top-k and query embedding are refused). Checked on query
pictures drawn afresh at every check against every stored vector scored in float32; each
call gets its own copy of the index, so an answer that changes it spoils nothing.
Q2 (build, 3 points): ``recall_at_k(ranked, relevant, k)``, the share of queries with a
right id among their first k, on cases drawn afresh (short lists, empty sets, several
right ids); a known mistake (recall in the information-retrieval sense, precision, only
the first id) is named.
The lesson measures its search engine with both (the library's while they do not pass).
Q3 (predict, 1 point): which queries reach the higher recall@1, class names or exact
captions? Four choices, each with a line of why.
Q4 (compute, 2 points): the megabytes an index of five million vectors holds after a
batched search (float16 vectors and their float32 copy); the lesson then sets it against a
laptop's memory.
"""

import functools
from typing import Any

import torch

from mmlearn import brute_force, evaluation, search, shapes
from mmlearn.exercises.core import (
    Incorrect,
    Question,
    call_learner,
    choice_checker,
    compare,
    fresh_generator,
    matches,
    value_checker,
)


def _randint(generator: torch.Generator, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high`` (both included)."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


# -- Q1: search by image -------------------------------------------------------------------

INDEX_SIZE = 300


@functools.lru_cache(maxsize=1)
def _test_index() -> search.ImageIndex:
    """A small ShapeWorld index built with the course CLIP (the checker's own: never handed
    to a learner's function, which gets a deep copy)."""
    from mmlearn.clip import load_clip

    clip = load_clip("course", "cpu", verbose=False)
    collection = shapes.ShapeWorld(INDEX_SIZE, "all", seed=21)
    return search.ImageIndex.build(clip, collection, batch_size=150, progress=False)


def _query_pictures(generator: torch.Generator) -> list[tuple]:
    """Three (picture, k) queries drawn afresh: two clean drawings and a ShapeWorld picture."""
    def pick(options) -> str:
        options = list(options)
        return options[_randint(generator, 0, len(options) - 1)]

    def drawing():
        return shapes.draw(pick(shapes.COLORS), pick(shapes.SHAPES), size=pick(shapes.SIZES),
                           position=pick(shapes.POSITIONS))

    other = shapes.ShapeWorld(1, "all", seed=_randint(generator, 1000, 10**6))[0][0]
    return [(drawing(), _randint(generator, 1, 3)), (other, _randint(generator, 4, 8)),
            (drawing(), _randint(generator, 9, 15))]


def _reference_scores(index: search.ImageIndex, image) -> torch.Tensor:
    """The cosine similarity of the picture with every stored vector, in float32."""
    with torch.no_grad():
        query = index.encoder.encode_images([image])[0]
    return index.vectors.float() @ query


def _as_ids(answer: Any, k: int, where: str) -> list[int]:
    if isinstance(answer, torch.Tensor):
        if answer.is_floating_point():
            raise Incorrect(f"{where}your function returned floating-point numbers; return the "
                            f"*ids* of the pictures (integers), not their scores.")
        answer = answer.flatten().tolist()
    try:
        ids = [int(i) for i in answer]
    except (TypeError, ValueError):
        raise Incorrect(f"{where}return a list (or tensor) of {k} integer ids, best first; got "
                        f"a {type(answer).__name__}.") from None
    if len(ids) != k:
        raise Incorrect(f"{where}asked for k={k} results, your function returned {len(ids)}.")
    return ids


def _check_search_by_image(fn: Any) -> None:
    """The ids must be a true top-k of the index for the picture, best first."""
    if not callable(fn):
        raise Incorrect(f"expected a function, got a {type(fn).__name__}.")
    index = _test_index()
    queries = _query_pictures(fresh_generator())
    for number, (image, k) in enumerate(queries, start=1):
        where = f"on query picture {number} (of {len(queries)}, k={k}): "
        scores = _reference_scores(index, image)
        answer = call_learner(fn, (index, image, k), case=f"on query picture {number} ")
        if answer is None:
            raise Incorrect(f"{where}your function returned None: did you forget `return`?")
        ids = _as_ids(answer, k, where)
        if not all(0 <= i < len(index) for i in ids):
            raise Incorrect(f"{where}some ids are not rows of the index (0 to "
                            f"{len(index) - 1}).")
        if len(set(ids)) != len(ids):
            raise Incorrect(f"{where}some ids come twice; each picture once, please.")
        got, best = scores[ids], scores.topk(k).values
        if (got.sort(descending=True).values - best).abs().max() > 1e-3:
            results = "your result is not the picture" if k == 1 else \
                f"your {k} results are not the {k} pictures"
            raise Incorrect(f"{where}{results} most similar to it. Compare image with "
                            f"image: the query's vector must come from the image encoder the "
                            f"index was built with, and every stored vector gets a score.")
        if (got[1:] > got[:-1] + 1e-3).any():
            raise Incorrect(f"{where}the right pictures, but not in order: the most similar "
                            f"picture must come first.")


q1 = Question(
    name="q1",
    variable="search_by_image",
    checker=_check_search_by_image,
    hint_text="Compare image with image: the query must become a vector in the same space "
              "as the stored ones, so it must come from the encoder that built the index "
              "(`index.encoder`). Then every stored picture gets one score, its cosine "
              "similarity with the query, and the answer is the ids of the k best, best first. "
              "The stored vectors are float16: compute the scores in float32.",
    solution_text="```python\ndef search_by_image(index, image, k):\n"
                  "    query = index.encoder.encode_images([image])[0]      # unit vector [D]\n"
                  "    scores = index.vectors.float() @ query               # cosine, one per "
                  "image\n"
                  "    return scores.topk(k).indices.tolist()\n```\n"
                  "`index.search(image, k)` does the same, in blocks, for many queries at once.",
    time_limit=60.0,
    points=3,
    forbidden=(search.ImageIndex.search, search.ImageIndex.topk, search.ImageIndex.embed_queries,
               search.recall_at_k, brute_force.top_k_one_query, brute_force.top_k_many,
               brute_force.best_k_of_rows, brute_force.first_k, _reference_scores),
)


# -- Q2: recall@k ------------------------------------------------------------------------------

def _recall_at_k(ranked: list[list[int]], relevant: list[set[int]], k: int) -> float:
    hits = [bool(set(ids[:k]) & set(wanted)) for ids, wanted in zip(ranked, relevant)]
    return sum(hits) / len(hits)


UNIVERSE = 40  # ids 0..39 in the check's cases


def _recall_case(generator: torch.Generator, length: int, k: int) -> tuple:
    """Ranked lists of ``length`` ids and sets of right ids that tell the mistakes apart.

    One query is found exactly at rank k (so "ids[:k-1]" and "only the first" miss it),
    one has its right id just after rank k, one has no right id at all (an empty set),
    one has two right ids in its first k and one it never finds; the others are random.
    """
    n_queries = _randint(generator, 6, 9)
    ranked = [torch.randperm(UNIVERSE, generator=generator)[:length].tolist()
              for _ in range(n_queries)]
    absent = [[i for i in range(UNIVERSE) if i not in ids] for ids in ranked]
    cut = min(k, length)
    relevant = [
        {ranked[0][cut - 1]},                                   # found at rank k
        {ranked[1][cut]} if cut < length else {absent[1][0]},   # just after rank k
        set(),                                                  # no right answer at all
        set(ranked[3][:2]) | {absent[3][0]},                    # two found, one not
        {absent[4][0], absent[4][1]},                           # never found
    ]
    for _ in range(5, n_queries):
        relevant.append(set(torch.randperm(UNIVERSE, generator=generator)
                            [:_randint(generator, 1, 4)].tolist()))
    order = torch.randperm(n_queries, generator=generator).tolist()
    return [ranked[q] for q in order], [relevant[q] for q in order], k


def _recall_cases(generator: torch.Generator) -> list[tuple]:
    length = _randint(generator, 5, 10)
    return [_recall_case(generator, length, 1),
            _recall_case(generator, length, _randint(generator, 2, length - 1)),
            _recall_case(generator, length, length + _randint(generator, 1, 3)),  # k > list
            _recall_case(generator, length, _randint(generator, 3, length - 1))]


def _recall_mistakes(ranked, relevant, k) -> list[tuple[float, str]]:
    n = len(ranked)
    found = [len(set(ids[:k]) & wanted) for ids, wanted in zip(ranked, relevant)]
    return [
        (sum(f / len(w) for f, w in zip(found, relevant) if w) / n,
         "you computed the share of each query's right ids that were found: that is recall "
         "in the information-retrieval sense. Here a query counts as found, once, when *at "
         "least one* of its right ids is among its first k."),
        (sum(f / k for f in found) / n,
         "you divided the right ids found by k: that is precision@k. Recall@k asks, for each "
         "query, whether any right id is among its first k."),
        (sum(found) / n, "a query with several right ids among its first k counts once, "
                         "not once per right id."),
        (sum(bool(set(ids[:1]) & w) for ids, w in zip(ranked, relevant)) / n,
         "you looked at the first id of each query only; look at its first k."),
        (sum(bool(set(ids[:k - 1]) & w) for ids, w in zip(ranked, relevant)) / n,
         "you looked at one id too few: the first k ids are `ids[:k]`."),
        (sum(bool(set(ids[:k + 1]) & w) for ids, w in zip(ranked, relevant)) / n,
         "you looked at one id too many: the first k ids are `ids[:k]`."),
        (float(sum(bool(set(ids[:k]) & w) for ids, w in zip(ranked, relevant))),
         "that is the number of queries found; recall@k is their share of all queries."),
        (100 * sum(bool(set(ids[:k]) & w) for ids, w in zip(ranked, relevant)) / n,
         "that is a percentage; return the share as a number from 0 to 1."),
        (sum(bool(set(ids[:k]) & w) for ids, w in zip(ranked, relevant))
         / max(1, sum(bool(w) for w in relevant)),
         "you left out the queries that have no right id. They are queries too, never found: "
         "divide by the number of all queries."),
    ]



def _check_recall(fn: Any) -> None:
    """All cases first; then a known mistake is named only if it explains every answer."""
    if not callable(fn):
        raise Incorrect(f"expected a function, got a {type(fn).__name__}.")
    cases = _recall_cases(fresh_generator())
    answers = []
    for number, args in enumerate(cases, start=1):
        got = call_learner(fn, args, reference=_recall_at_k, case=f"on test case {number} ")
        if got is None:
            raise Incorrect(f"on test case {number} your function returned None: did you "
                            f"forget `return`?")
        answers.append(got)
    expected = [_recall_at_k(*args) for args in cases]
    wrong = [n for n, (got, want) in enumerate(zip(answers, expected)) if not matches(got, want)]
    if not wrong:
        return
    first = wrong[0]
    where = f"on test case {first + 1} (of {len(cases)}, k={cases[first][2]}): "
    mistakes = [_recall_mistakes(*args) for args in cases]
    for m, (_, message) in enumerate(mistakes[0]):
        values = [case_mistakes[m][0] for case_mistakes in mistakes]
        if all(matches(got, value) for got, value in zip(answers, values)):
            raise Incorrect(where + message)
    try:
        compare(answers[first], expected[first])
    except Incorrect as wrong_value:
        raise Incorrect(f"{where}{wrong_value}") from None


q2 = Question(
    name="q2",
    variable="recall_at_k",
    checker=_check_recall,
    hint_text="For one query the question is yes or no: is *any* of its right ids among "
              "its first k results (fewer if its list is shorter)? recall@k is the share of "
              "yes over all the queries, those with no right id included.",
    solution_text="```python\ndef recall_at_k(ranked, relevant, k):\n"
                  "    hits = [bool(set(ids[:k]) & set(wanted)) for ids, wanted in "
                  "zip(ranked, relevant)]\n    return sum(hits) / len(hits)\n```",
    time_limit=30.0,
    points=3,
    forbidden=(search.recall_at_k, search.ImageIndex.topk, evaluation.averages,
               evaluation.judged_row, evaluation.dalle_hit_rates, evaluation.unclip_hit_rates,
               _recall_at_k),
)


# -- Q3: predict, then run ---------------------------------------------------------------------

q3 = Question(
    name="q3",
    variable="prediction_recall",
    checker=choice_checker("a", "abcd", reason=True, why_not={
        "b": "an exact caption counts as right only the few pictures that carry that very "
             "text, although many more show the same thing. Compare the rows of the table.",
        "c": "count the right answers of each kind of query: about 80 pictures for a class "
             "name (3,000 / 36), a handful for an exact caption. Compare the rows of the table.",
        "d": "held-out combinations are found as well as seen ones by their class name: "
             "compare the rows of the table.",
    }),
    hint_text="For each kind of query, how many pictures of the 3,000 count as a right answer? "
              "The more right answers there are, the easier it is to have one at rank 1.",
    solution_text="```python\nprediction_recall = \"a: a class name has about 80 right "
                  "pictures, an exact caption only a few\"\n```\nA class-name query has about "
                  "80 right pictures (3,000 / 36); an exact caption has only the few pictures "
                  "that carry that identical text, although many others show the same thing. "
                  "What counts as right decides the number.",
    points=1,
    predict=True,
)


# -- Q4: the memory of an index -------------------------------------------------------------

IMAGES, DIMENSIONS = 5_000_000, 768
FLOAT16_MEGABYTES = IMAGES * DIMENSIONS * 2 / 1e6       # 7,680 MB: what one query reads
INDEX_MEGABYTES = IMAGES * DIMENSIONS * (2 + 4) / 1e6   # 23,040 MB: with the float32 copy


def _close(answer: Any, value: float) -> bool:
    try:
        compare(answer, value, rtol=1e-3)
        return True
    except Exception:  # Incorrect, NotAttempted, or an answer compare cannot read
        return False


def _check_megabytes(answer: Any) -> None:
    """The number of MB (10^6 bytes); the parts and units often mixed up are named."""
    mistakes = [
        (FLOAT16_MEGABYTES, "that is the float16 vectors alone; after a batched search the "
                            "float32 copy is kept beside them."),
        (INDEX_MEGABYTES - FLOAT16_MEGABYTES, "that is the float32 copy alone, the float16 "
                                              "vectors stay too; or you counted 512 numbers a "
                                              "vector, and ViT-L-14 has 768."),
        (IMAGES * DIMENSIONS * 8 / 1e6, "that counts 8 bytes a number; each number is stored "
                                        "once in 2 bytes (float16) and once in 4 (float32)."),
        (INDEX_MEGABYTES * 8, "that is in megabits; a megabyte is 8 megabits."),
        (INDEX_MEGABYTES * 8e6, "that is in bits; a megabyte is 10^6 bytes of 8 bits."),
        (INDEX_MEGABYTES * 1e6 / 2**20, "that is in MiB (2^20 bytes); a megabyte here is 10^6 "
                                        "bytes."),
        (INDEX_MEGABYTES / 1e3, "that is in gigabytes; the question asks for megabytes "
                                "(10^6 bytes)."),
        (INDEX_MEGABYTES * 1e6 / 2**30, "that is in GiB; the question asks for megabytes "
                                        "(10^6 bytes)."),
        (INDEX_MEGABYTES * 1e6, "that is in bytes; a megabyte is 10^6 bytes."),
    ]
    for value, message in mistakes:
        if _close(answer, value):
            raise Incorrect(message)
    if _not_positive(answer):
        raise Incorrect("a size in megabytes is a positive number.")
    value_checker(INDEX_MEGABYTES, rtol=1e-3)(answer)


def _not_positive(answer: Any) -> bool:
    """A number of zero or less; a string ("-5") is left to the check, which asks for a number."""
    if isinstance(answer, (str, bytes)):
        return False
    try:
        return float(answer) <= 0
    except Exception:  # a list, a tensor of many numbers, a function, ...
        return False


q4 = Question(
    name="q4",
    variable="index_megabytes",
    checker=_check_megabytes,
    hint_text="Count the numbers the vectors hold (images x dimensions). After a batched "
              "search each is stored twice: once as float16, once as float32. How many bytes "
              "does each of those types take? A megabyte here is 10^6 bytes.",
    solution_text="```python\nindex_megabytes = 5_000_000 * 768 * (2 + 4) / 1e6\n```\n23,040 "
                  "MB: 7,680 MB of float16 vectors (2 bytes a number), which a single query "
                  "reads, and 15,360 MB of float32 copy (4 bytes a number), which batches "
                  "multiply. Past what one machine's memory holds, product quantisation (faiss "
                  "PQ) stores each vector in some tens of bytes (64 with 64 pieces), or the "
                  "collection is split across machines; an approximate index (faiss IVF, HNSW) "
                  "makes each query faster, but keeps every full vector.",
    points=2,
)
