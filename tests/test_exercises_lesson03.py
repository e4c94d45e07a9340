"""Lesson 03's exercises: every checker accepts a right answer and rejects plausible mistakes."""

import pytest
import torch

from mmlearn.exercises import lesson03

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------- predict, then run

@pytest.mark.parametrize("question, right, wrongs", [
    (lesson03.q1, "a", "bc")])
def test_predictions_accept_the_right_letter_and_teach_on_a_wrong_one(question, right, wrongs):
    for spelling in (right, right.upper(), f"({right})", f" {right} "):
        assert question.check(spelling).correct
    for wrong in wrongs:
        feedback = question.check(wrong)
        assert feedback.status == "incorrect" and "Run the cell below" in feedback.message
        assert f'"{right}"' not in feedback.message   # the right letter is not given away


@pytest.mark.parametrize("answer, status, says", [
    (None, "not attempted", "placeholder"), ("z", "incorrect", "not one of the choices"),
    (2, "incorrect", "one letter"), ("", "not attempted", "placeholder")])
def test_predictions_explain_unusable_answers(answer, status, says):
    feedback = lesson03.q1.check(answer)
    assert feedback.status == status and says in feedback.message


# ---------------------------------------------------------------------------- lesson 03

def search_by_image(index, image, k):
    query = index.encoder.encode_images([image])[0]
    return (index.vectors.float() @ query).topk(k).indices.tolist()


def test_lesson03_search_by_image_accepts_working_searches():
    assert lesson03.q2.check(search_by_image).correct
    as_tensor = lambda index, image, k: torch.tensor(search_by_image(index, image, k))  # noqa
    assert lesson03.q2.check(as_tensor).correct
    with_library = lambda index, image, k: [h.id for h in index.search(image, k)]  # noqa: E731
    assert lesson03.q2.check(with_library).correct


def _least_similar(index, image, k):
    query = index.encoder.encode_images([image])[0]
    return (index.vectors.float() @ query).topk(k, largest=False).indices.tolist()


def _text_of_nothing(index, image, k):  # searched with a text, not with the picture
    return [h.id for h in index.search("a picture", k)]


def _sorted_ids(index, image, k):  # the right ids, but sorted by number, not by score
    return sorted(search_by_image(index, image, k))


def _scores(index, image, k):
    query = index.encoder.encode_images([image])[0]
    return (index.vectors.float() @ query).topk(k).values


@pytest.mark.parametrize("wrong, says", [
    (_least_similar, "not the"), (_text_of_nothing, "not the"), (_sorted_ids, "not in order"),
    (_scores, "ids"), (lambda index, image, k: search_by_image(index, image, k + 1), "returned"),
    (lambda index, image, k: 1 / 0, "ZeroDivisionError")])
def test_lesson03_search_by_image_rejects_plausible_mistakes(wrong, says):
    feedback = lesson03.q2.check(wrong)
    assert feedback.status == "incorrect" and says in feedback.message


def test_lesson03_recall_and_megabytes():
    right = lambda r, rel, k: sum(bool(set(i[:k]) & w) for i, w in zip(r, rel)) / len(r)  # noqa
    at_1 = lambda r, rel, k: sum(i[0] in w for i, w in zip(r, rel)) / len(r)  # noqa: E731
    assert lesson03.q3.check(right).correct
    assert lesson03.q3.check(at_1).status == "incorrect"
    assert lesson03.q4.check(7680.0).correct
    assert lesson03.q4.check(7680 * 1e6 / 2**20).status == "incorrect"  # MiB, not MB
    assert lesson03.q4.check(15360.0).status == "incorrect"             # float32 thinking
    assert lesson03.q4.check(1024.0).status == "incorrect"              # the table's row


def test_placeholders_are_not_attempted():
    def placeholder(*args):
        raise NotImplementedError
    for question in (lesson03.q2,):
        assert question.check(placeholder).status == "not attempted"
