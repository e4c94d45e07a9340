"""Lesson 03's exercises: every checker accepts a right answer and rejects delegating,
hard-coded and plausible wrong ones; no answer can spoil the index of a later check."""

import dataclasses
import json
import os
from decimal import Decimal
from fractions import Fraction

import pytest
import torch

from mmlearn import brute_force, evaluation
from mmlearn.exercises import grading, lesson03
from mmlearn.exercises.core import NotCommitted, NotCorrect

pytestmark = pytest.mark.usefixtures("one_thread", "not_grading")


@pytest.fixture
def grading_on(monkeypatch, tmp_path):
    monkeypatch.setenv("MMLEARN_GRADING", "1")  # restored after the test, whatever an answer writes
    grading.start_grading(tmp_path / "log.jsonl")


def _incorrect(question, answer, *says):
    feedback = question.check(answer)
    assert feedback.status == "incorrect", feedback
    for text in says:
        assert text in feedback.message, feedback.message
    return feedback


# -- Q1: search by image --------------------------------------------------------------------

def search_by_image(index, image, k):
    query = index.encoder.encode_images([image])[0]
    return (index.vectors.float() @ query).topk(k).indices.tolist()


@pytest.mark.slow
def test_q1_accepts_working_searches():
    assert lesson03.q1.check(search_by_image).correct
    as_tensor = lambda index, image, k: torch.tensor(search_by_image(index, image, k))  # noqa
    assert lesson03.q1.check(as_tensor).correct

    def with_the_float32_copy(index, image, k):  # search_matrix only converts, it does not rank
        query = index.encoder.encode_images([image])
        return (index.search_matrix() @ query.T)[:, 0].argsort(descending=True)[:k]
    assert lesson03.q1.check(with_the_float32_copy).correct


@pytest.mark.parametrize("answer, calls", [
    (lambda index, image, k: [h.id for h in index.search(image, k)], "ImageIndex.search"),
    # the cell above the question in the old lesson, copied
    (lambda index, image, k: index.topk(index.embed_queries(image), k)[1][0].tolist(),
     "ImageIndex.embed_queries"),
    (lambda index, image, k: index.topk(index.encoder.encode_images([image]), k)[1][0],
     "ImageIndex.topk"),
    (lambda index, image, k: brute_force.top_k_one_query(
        index.encoder.encode_images([image])[0], index.vectors, k)[1], "top_k_one_query"),
    (lambda index, image, k: lesson03._reference_scores(index, image).topk(k).indices,
     "_reference_scores"),
    (lambda index, image, k: [h.id for h in index.search("a picture", k)], "ImageIndex.search"),
])
def test_q1_refuses_an_answer_that_delegates(answer, calls):
    _incorrect(lesson03.q1, answer, "calls `", calls)


def test_q1_refuses_hard_coded_answers():
    index = lesson03._test_index()
    remembered = [search_by_image(index, image, k)
                  for image, k in lesson03._query_pictures(torch.Generator().manual_seed(0))]
    answers = iter(remembered * 2)
    _incorrect(lesson03.q1, lambda index, image, k: next(answers))
    _incorrect(lesson03.q1, lambda index, image, k: list(range(k)), "not the")


def _least_similar(index, image, k):
    query = index.encoder.encode_images([image])[0]
    return (index.vectors.float() @ query).topk(k, largest=False).indices.tolist()


def _with_a_text(index, image, k):  # the text encoder's vector for a caption, not the picture's
    query = index.encoder.encode_texts(["a picture"])[0]
    return (index.vectors.float() @ query).topk(k).indices.tolist()


def _sorted_ids(index, image, k):  # the right ids, but sorted by number, not by score
    return sorted(search_by_image(index, image, k))


def _scores(index, image, k):
    query = index.encoder.encode_images([image])[0]
    return (index.vectors.float() @ query).topk(k).values


@pytest.mark.parametrize("wrong, says", [
    (_least_similar, "not the"), (_with_a_text, "image encoder"), (_sorted_ids, "not in order"),
    (_scores, "ids"), (lambda index, image, k: search_by_image(index, image, k + 1), "returned"),
    (lambda index, image, k: [search_by_image(index, image, 1)[0]] * k, "twice"),
    (lambda index, image, k: [len(index) + i for i in range(k)], "not rows of the index"),
    (lambda index, image, k: None, "return"),
    (lambda index, image, k: 1 / 0, "ZeroDivisionError")])
def test_q1_rejects_plausible_mistakes_with_a_message(wrong, says):
    _incorrect(lesson03.q1, wrong, says)


@pytest.mark.slow
def test_q1_an_answer_that_spoils_its_index_spoils_no_later_check():
    def zero_the_index(index, image, k):
        index.vectors.zero_()
        return search_by_image(index, image, k)

    def train_the_encoder(index, image, k):
        index.encoder.model.train()
        index.vectors.mul_(-1)
        return _least_similar(index, image, k)  # right for the spoiled copy it was given

    pristine = lesson03._test_index().vectors.clone()
    _incorrect(lesson03.q1, zero_the_index, "not the")
    assert lesson03.q1.check(search_by_image).correct
    _incorrect(lesson03.q1, train_the_encoder)
    assert lesson03.q1.check(search_by_image).correct
    assert torch.equal(lesson03._test_index().vectors, pristine)
    assert not lesson03._test_index().encoder.model.training


def test_q1_grading_switch_in_an_answer_fails(grading_on):
    def switch(index, image, k):
        os.environ["MMLEARN_GRADING"] = "0"
        return list(range(k))
    with pytest.raises(NotCorrect):
        lesson03.q1.check(switch)


# -- Q2: recall@k --------------------------------------------------------------------------

def recall_at_k(ranked, relevant, k):
    hits = [bool(set(ids[:k]) & set(wanted)) for ids, wanted in zip(ranked, relevant)]
    return sum(hits) / len(hits)


def test_q2_accepts_right_recalls():
    assert lesson03.q2.check(recall_at_k).correct
    with_any = lambda r, rel, k: sum(any(i in w for i in ids[:k]) for ids, w in zip(r, rel)) / len(r)  # noqa
    assert lesson03.q2.check(with_any).correct


def test_q2_cases_cover_the_edges():
    for ranked, relevant, k in lesson03._recall_cases(torch.Generator().manual_seed(3)):
        assert set() in relevant                             # a query with no right id
        assert k == 1 or any(len(w & set(ids[:k])) >= 2 for ids, w in zip(ranked, relevant))
    assert any(k > len(ranked[0]) for ranked, _, k in
               lesson03._recall_cases(torch.Generator().manual_seed(3)))  # k past the list


def _averages(r, rel, k):  # hit rates computed by a library function meant for generators
    rows = [{"seen": True, "color": float(bool(set(ids[:k]) & w)), "shape": 0.0, "both": 0.0,
             "n": 1}
            for ids, w in zip(r, rel)]
    return evaluation.averages(rows)["all"]["color"]


@pytest.mark.parametrize("answer, calls", [
    (lesson03._recall_at_k, "_recall_at_k"),
    (lambda r, rel, k: lesson03._recall_at_k(r, rel, k) + 0.0, "_recall_at_k"),
    (_averages, "evaluation.averages"),
])
def test_q2_refuses_an_answer_that_delegates(answer, calls):
    _incorrect(lesson03.q2, answer, "calls `", calls)


def test_q2_refuses_hard_coded_answers():
    remembered = [recall_at_k(*case) for case in
                  lesson03._recall_cases(torch.Generator().manual_seed(0))]
    answers = iter(remembered * 2)
    _incorrect(lesson03.q2, lambda r, rel, k: next(answers))
    _incorrect(lesson03.q2, lambda r, rel, k: 0.5)


@pytest.mark.parametrize("answer, says", [
    (lambda r, rel, k: sum(i[0] in w for i, w in zip(r, rel)) / len(r), "first id"),
    (lambda r, rel, k: sum(len(set(i[:k]) & w) / len(w) for i, w in zip(r, rel) if w) / len(r),
     "information-retrieval"),
    (lambda r, rel, k: sum(len(set(i[:k]) & w) / k for i, w in zip(r, rel)) / len(r),
     "precision"),
    (lambda r, rel, k: sum(len(set(i[:k]) & w) for i, w in zip(r, rel)) / len(r), "counts once"),
    (lambda r, rel, k: sum(bool(set(i[:k]) & w) for i, w in zip(r, rel)), "share of all"),
    (lambda r, rel, k: sum(bool(set(i[:k - 1]) & w) for i, w in zip(r, rel)) / len(r), "too few"),
    (lambda r, rel, k: sum(bool(set(i[:k + 1]) & w) for i, w in zip(r, rel)) / len(r), "too many"),
    (lambda r, rel, k: sum(len(set(i[:k]) & w) / len(w) for i, w in zip(r, rel)) / len(r),
     "ZeroDivisionError"),                 # IR recall that forgets the query with no right id
    (lambda r, rel, k: 100 * sum(bool(set(i[:k]) & w) for i, w in zip(r, rel)) / len(r),
     "percentage"),
    (lambda r, rel, k: sum(bool(set(i[:k]) & w) for i, w in zip(r, rel) if w)
     / sum(1 for w in rel if w), "no right id"),
])
def test_q2_rejects_plausible_mistakes_with_a_message(answer, says):
    _incorrect(lesson03.q2, answer, says)


def test_q2_grading_switch_in_an_answer_fails(grading_on):
    def switch(ranked, relevant, k):
        os.environ["MMLEARN_GRADING"] = "0"
        return 1.0
    with pytest.raises(NotCorrect):
        lesson03.q2.check(switch)


def test_builds_placeholders_are_not_attempted():
    def placeholder(*args):
        raise NotImplementedError
    for question in (lesson03.q1, lesson03.q2):
        assert question.check(placeholder).status == "not attempted"


# -- Q3: predict, then run; Q4: megabytes ------------------------------------------------

def _fresh(question):
    """The same question with nothing committed yet (the module's one keeps its state)."""
    return dataclasses.replace(question)


def test_q3_is_committed_before_the_reveal_and_judged_after():
    q3 = _fresh(lesson03.q3)
    with pytest.raises(NotCommitted):
        q3.reveal()
    assert "add one line of why" in q3.check("a").message
    assert q3.check("b: an exact caption says exactly what is shown").status == "recorded"
    q3.reveal()
    feedback = q3.check("a: now that I have seen the table")
    assert feedback.status == "incorrect"            # the first prediction is the one judged
    assert '"a"' not in feedback.message


def test_q3_guessing_scores_a_quarter():
    outcomes = []
    for letter in "abcd":
        q3 = _fresh(lesson03.q3)
        q3.check(f"({letter}) a guess made at random")
        q3.reveal()
        outcomes.append(q3.check(f"({letter}) a guess made at random").correct)
    assert outcomes == [True, False, False, False]
    assert lesson03.q3.points == 1 and lesson03.q4.points == 2


@pytest.mark.parametrize("answer, status", [
    (23040.0, "correct"), (23040, "correct"), (5_000_000 * 768 * 6 / 1e6, "correct"),
    (23040 * 1e6 / 2**20, "incorrect"),  # MiB, not MB
    (7680.0, "incorrect"),               # the float16 vectors alone
    (15360.0, "incorrect"),              # the float32 copy alone
    (1024.0, "incorrect"),               # the scaling table's row
    ("23040", "incorrect"), (None, "not attempted"), (float("nan"), "incorrect"),
    (Fraction(23040), "correct"), (Decimal("23040"), "correct")])
def test_q4_megabytes(answer, status):
    assert lesson03.q4.check(answer).status == status


@pytest.mark.parametrize("answer, says", [
    (21972.7, "MiB"), (23.04, "gigabytes"), (21.46, "GiB"), (7680.0, "float16 vectors alone"),
    (15360.0, "float32 copy alone"), (2.304e10, "in bytes"), (30720, "8 bytes"),
    (184320, "megabits"), (1.8432e11, "in bits"), (-23040, "positive"), (0, "positive"),
    ("-5", "remove the quotes"), (10**400, "far too large"), (1024.0, "Not yet")])
def test_q4_names_the_mix_ups(answer, says):
    feedback = lesson03.q4.check(answer)
    assert feedback.status == "incorrect" and says in str(feedback), feedback


# -- the notebook --------------------------------------------------------------------------

def test_the_notebook_asks_q1_to_q4_in_order_and_uses_the_learners_functions():
    from notebook_skeleton import ROOT

    notebook = json.loads((ROOT / "notebooks" / "03_image_search.ipynb").read_text())
    sources = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    checks = [s for s in sources if s.strip() in {f"q{n}.check()" for n in range(1, 9)}]
    assert checks == ["q1.check()", "q2.check()", "q3.check()", "q4.check()"]
    reveal = [i for i, s in enumerate(sources) if "q3.reveal()" in s]
    assert len(reveal) == 1 and sources[reveal[0]].startswith("q3.reveal()")
    assert sources.index("q3.check()") < reveal[0]
    assert "recall_table(" in sources[reveal[0]]
    assert any("q1.passed()" in s for s in sources) and any("q2.passed()" in s for s in sources)
    answers = [s for s in sources if "### BEGIN SOLUTION" in s]
    assert not any("import" in s.split("### BEGIN SOLUTION")[0] for s in answers)
