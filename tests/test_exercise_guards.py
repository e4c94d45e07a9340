"""What keeps a check honest: forbidden calls, fresh cases, predictions, grading mode.

Each guard is shown failing the answer it exists for: one that delegates to the
library, one that returns remembered numbers, one that changes the library, a
guessed prediction, and the one-line ways to switch grading off.
"""

import functools
import os

import pytest
import torch
import torch.nn.functional as F

from mmlearn import losses
from mmlearn.exercises import grading
from mmlearn.exercises.core import (
    NotCommitted,
    NotCorrect,
    Question,
    choice_checker,
    function_checker,
)


def _cosine(a, b):
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))


def _cases(generator):
    return [(torch.randn(3, 5, generator=generator), torch.randn(3, 5, generator=generator))]


def _question(**kwargs):
    return Question("q9", "cos", function_checker(_cosine, _cases), "h", "s",
                    forbidden=(F.cosine_similarity, _cosine), **kwargs)


def test_an_answer_of_its_own_passes(not_grading):
    assert _question().check(lambda a, b: (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
                             ).correct


@pytest.mark.parametrize("answer", [
    F.cosine_similarity,                                       # the library's builtin itself
    lambda a, b: F.cosine_similarity(a, b, dim=-1),            # called inside
    lambda a, b: torch.cosine_similarity(a, b, dim=-1),        # the same builtin, another name
    _cosine,                                                   # the checker's reference
    functools.partial(_cosine),                                # wrapped
])
def test_an_answer_that_delegates_is_refused_by_name(not_grading, answer):
    feedback = _question().check(answer)
    assert feedback.status == "incorrect"
    assert "calls `" in feedback.message and "Write it yourself" in feedback.message


def test_a_tensor_method_written_in_c_is_refused_on_any_tensor(not_grading):
    q = Question("q6", "soft", function_checker(lambda x: x.exp() / x.exp().sum(-1, keepdim=True),
                                                lambda g: [(torch.randn(2, 5, generator=g),)]),
                 "h", "s", forbidden=(torch.Tensor.softmax, torch.softmax))
    assert q.check(lambda x: x.exp() / x.exp().sum(-1, keepdim=True)).correct
    assert "softmax" in q.check(lambda x: x.softmax(-1)).message
    assert "softmax" in q.check(lambda x: torch.softmax(x, -1)).message


def test_a_delegation_caught_by_the_learner_is_still_refused(not_grading):
    def sly(a, b):
        try:
            return F.cosine_similarity(a, b, dim=-1)
        except Exception:
            return _cosine(a, b)
    assert "calls `" in _question().check(sly).message


def test_a_library_class_is_refused_by_its_forward(not_grading):
    def loss_reference(i, t, s):
        return losses.clip_loss(i, t, s)
    q = Question("q8", "loss", function_checker(loss_reference, lambda g: [
        (F.normalize(torch.randn(4, 8, generator=g), dim=-1),
         F.normalize(torch.randn(4, 8, generator=g), dim=-1), torch.tensor(10.0))]),
        "h", "s", forbidden=(losses.clip_loss,))
    assert "mmlearn.losses.clip_loss" in q.check(lambda i, t, s: losses.clip_loss(i, t, s)).message


def test_a_hard_coded_answer_fails_on_fresh_cases(not_grading):
    """Remembering the outputs of one check does not pass the next: cases are new each time."""
    seen = {}

    def recorder(a, b):
        seen["result"] = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
        return seen["result"]
    assert _question().check(recorder).correct
    remembered = seen["result"].clone()
    assert _question().check(lambda a, b: remembered).status == "incorrect"


def test_a_learner_cannot_replace_library_functions(not_grading):
    original = losses.clip_loss

    def vandal(a, b):
        losses.clip_loss = lambda *args: torch.tensor(0.0)
        return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
    feedback = _question().check(vandal)
    assert losses.clip_loss is original
    assert "replaced `mmlearn.losses.clip_loss`" in feedback.message


def test_keyboard_interrupt_and_system_exit_end_in_a_verdict(not_grading):
    def interrupt(a, b):
        raise KeyboardInterrupt

    def leave(a, b):
        raise SystemExit(0)
    assert _question().check(interrupt).status == "incorrect"
    assert _question().check(leave).status == "incorrect"


def test_a_result_whose_comparison_raises_ends_in_a_verdict(not_grading):
    class Weird:
        def __eq__(self, other):
            raise RuntimeError("no")

        def __array__(self, *args, **kwargs):
            raise RuntimeError("no")
    assert _question().check(lambda a, b: Weird()).status == "incorrect"


# -- predictions ------------------------------------------------------------------------

def _prediction():
    return Question("q7", "guess", choice_checker("b", "abcd", reason=True), "h", "s",
                    predict=True)


def test_a_prediction_is_recorded_before_the_reveal_and_judged_after(not_grading):
    q = _prediction()
    with pytest.raises(NotCommitted):
        q.reveal()
    assert q.check("a").status == "incorrect"  # no reason: told to add one, nothing stored
    first = q.check("a: the loss cannot be lower")
    assert first.status == "recorded" and "a: the loss" in first.message
    q.reveal()
    assert q.check("b: now I know better").status == "incorrect"  # the first one counts


def test_a_prediction_without_a_reason_is_not_accepted(not_grading):
    q = _prediction()
    assert "add one line of why" in q.check("b").message
    assert q.check("b) because the scores are close").status == "recorded"
    q.reveal()
    assert q.check().status in ("not attempted", "correct")  # the notebook variable is unset
    assert q.check("b) because the scores are close").correct


def test_guessing_a_four_way_prediction_scores_a_quarter(not_grading):
    outcomes = []
    for letter in "abcd":
        q = _prediction()
        q.check(f"{letter}: a guess made at random")
        q.reveal()
        outcomes.append(q.check(f"{letter}: a guess made at random").correct)
    assert sum(outcomes) / len(outcomes) < 1 / 3


# -- grading mode -----------------------------------------------------------------------

def test_the_environment_variable_no_longer_switches_grading(not_grading, monkeypatch):
    monkeypatch.setenv("MMLEARN_GRADING", "1")
    assert not grading.grading()
    assert _question().check(lambda a, b: a).status == "incorrect"  # a verdict, not a raise


def test_grading_mode_cannot_be_switched_off_by_a_cell(not_grading, tmp_path):
    grading.start_grading(tmp_path / "log.jsonl")
    os.environ["MMLEARN_GRADING"] = "0"  # what a learner's cell could write
    try:
        with pytest.raises(NotCorrect):
            _question().check(lambda a, b: a)
    finally:
        os.environ.pop("MMLEARN_GRADING")


def test_solutions_and_tampering_are_written_to_the_log(not_grading, tmp_path):
    log = tmp_path / "log.jsonl"
    question = _question()
    namespace = {"q9": question}
    grading.start_grading(log)
    grading._after_cell(namespace)
    question.solution()
    Question.reveal, original = (lambda self: None), Question.reveal
    try:
        namespace["q9"] = object()
        grading._after_cell(namespace)
    finally:
        Question.reveal = original
    summary = grading.read_log(log)
    assert summary["solutions"] == ["q9"]
    assert "Question.reveal" in summary["tampered"] and summary["machinery"]
    assert any("q9" in t for t in summary["tampered"]) and summary["tampered_questions"] == {"q9"}
    assert summary["cells"] == 2


def test_a_missing_log_counts_as_tampering(tmp_path):
    assert grading.read_log(tmp_path / "none.jsonl")["tampered"]


def test_passed_answers_without_raising_and_reuses_the_last_check(not_grading, monkeypatch,
                                                                   tmp_path):
    from mmlearn.exercises import core
    q = _question()
    namespace = {}
    monkeypatch.setattr(core, "_learner_namespace", lambda: namespace)
    assert not q.passed()
    namespace["cos"] = lambda a, b: a
    grading.start_grading(tmp_path / "log.jsonl")
    assert not q.passed()   # wrong, and no NotCorrect even in grading mode
    namespace["cos"] = lambda a, b: (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
    assert q.passed()


def test_a_cell_that_switches_grading_off_is_logged_and_undone(not_grading, tmp_path):
    log = tmp_path / "log.jsonl"
    grading.start_grading(log)
    grading._STATE["on"] = False  # what a learner's cell could write
    grading._after_cell({})
    assert grading.grading()
    summary = grading.read_log(log)
    assert "grading was switched off" in summary["tampered"] and summary["machinery"]
