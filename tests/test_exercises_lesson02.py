"""Lesson 02's exercises: each check accepts a right answer and rejects plausible wrong ones."""


import torch.nn.functional as F

from mmlearn.exercises import lesson02


def _status(question, answer) -> str:
    return question.check(answer).status


# -- lesson 02 ------------------------------------------------------------------------

def test_lesson02_ensemble_classifier():
    right = lambda p: F.normalize(F.normalize(p, dim=-1).mean(1), dim=-1).T  # noqa: E731
    assert lesson02.q1.check(right).correct
    wrong = {
        "no inner normalisation": lambda p: F.normalize(p.mean(1), dim=-1).T,
        "no outer normalisation": lambda p: F.normalize(p, dim=-1).mean(1).T,
        "classes in rows": lambda p: F.normalize(F.normalize(p, dim=-1).mean(1), dim=-1),
        "mean over classes": lambda p: F.normalize(F.normalize(p, dim=-1).mean(0), dim=-1).T,
    }
    for name, answer in wrong.items():
        assert _status(lesson02.q1, answer) == "incorrect", name


def test_lesson02_templates_are_measured_against_the_class_name(one_thread):
    assert lesson02.q2.check(["a {}", "a picture of a {}"]).correct
    assert lesson02.q2.check(["a {}"]).correct
    for wrong in (["{}"], ["{} shape"], ["a big {}", "a small {}"], "a {}", ["a red circle"],
                  ["a {} {}"], []):
        assert _status(lesson02.q2, wrong) == "incorrect", wrong
    assert "held-out" in lesson02.q2.check(["{} shape"]).message


def test_lesson02_prediction():
    assert lesson02.q3.check("c").correct
    assert _status(lesson02.q3, "a") == "incorrect"
    assert _status(lesson02.q3, "b") == "incorrect"
