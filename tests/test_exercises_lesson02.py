"""Lesson 02's exercises: each check accepts a right answer and rejects delegating, hard-coded
and plausible wrong ones with a message that teaches; the prediction is committed first."""

import dataclasses
import json
import math
import os

import open_clip
import pytest
import torch
import torch.nn.functional as F

from mmlearn import shapes, zeroshot
from mmlearn.exercises import grading, lesson02
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


# -- Q1: the classifier from class names and templates ------------------------------------

def zero_shot_classifier(encode_texts, class_names, templates):
    columns = []
    for name in class_names:
        embeddings = F.normalize(encode_texts([t.format(name) for t in templates]), dim=-1)
        columns.append(F.normalize(embeddings.mean(dim=0), dim=-1))
    return torch.stack(columns, dim=1)


def _all_prompts_at_once(encode_texts, class_names, templates):
    prompts = [t.format(name) for name in class_names for t in templates]
    embeddings = encode_texts(prompts).view(len(class_names), len(templates), -1)
    return F.normalize(F.normalize(embeddings, dim=-1).mean(dim=1), dim=-1).T


def test_q1_accepts_right_classifiers():
    assert lesson02.q1.check(zero_shot_classifier).correct
    assert lesson02.q1.check(_all_prompts_at_once).correct


def test_q1_reference_is_the_library_and_open_clip():
    for encoder, names, templates in lesson02._classifier_cases(torch.Generator().manual_seed(1)):
        expected = lesson02._library_classifier(encoder, names, templates)
        theirs = open_clip.build_zero_shot_classifier(
            encoder.as_model(), encoder.tokenize, names, templates, num_classes_per_batch=None,
            device="cpu", use_tqdm=False)
        assert torch.allclose(expected, theirs, atol=1e-6)
        assert torch.allclose(zero_shot_classifier(encoder, names, templates), expected,
                              atol=1e-6)


def test_q1_works_with_the_course_clip():
    from mmlearn.clip import load_clip

    course = load_clip("course", "cpu", verbose=False)
    mine = zero_shot_classifier(course.encode_texts, shapes.CLASSES[:5], ["a {}", "one {}"])
    library = zeroshot.build_classifier(course.model, course.tokenizer, shapes.CLASSES[:5],
                                        ["a {}", "one {}"])
    assert torch.allclose(mine, library, atol=1e-5)


@pytest.mark.parametrize("answer, calls", [
    (lambda e, n, t: zeroshot.build_classifier(e.as_model(), e.tokenize, n, t),
     "mmlearn.zeroshot.build_classifier"),
    (lambda e, n, t: open_clip.build_zero_shot_classifier(
        e.as_model(), e.tokenize, n, t, num_classes_per_batch=None, device="cpu"),
     "build_zero_shot_classifier"),
    (lesson02._library_classifier, "_library_classifier"),
])
def test_q1_refuses_an_answer_that_delegates(answer, calls):
    _incorrect(lesson02.q1, answer, "calls `", calls)


def test_q1_refuses_hard_coded_answers():
    remembered = [zero_shot_classifier(*case)
                  for case in lesson02._classifier_cases(torch.Generator().manual_seed(0))]
    answers = iter(remembered * 2)
    _incorrect(lesson02.q1, lambda e, n, t: next(answers))
    _incorrect(lesson02.q1, lambda e, n, t: torch.zeros(12, 4))


@pytest.mark.parametrize("answer, says", [
    (lambda e, n, t: zero_shot_classifier(e, n, t).T, "*column* per class"),
    (lambda e, n, t: torch.stack([F.normalize(e([x.format(c) for x in t]).mean(0), dim=-1)
                                  for c in n], 1), "bring each prompt embedding to length 1"),
    (lambda e, n, t: torch.stack([F.normalize(e([x.format(c) for x in t]), dim=-1).mean(0)
                                  for c in n], 1), "length 1 again"),
    (lambda e, n, t: torch.stack([e([x.format(c) for x in t]).mean(0) for c in n], 1),
     "never brought"),
    (lambda e, n, t: torch.stack([F.normalize(e([c.format(x) for x in t]), dim=-1).mean(0)
                                  for c in n], 1), "not one of the templates filled"),
    (lambda e, n, t: F.normalize(F.normalize(e([x.format(c) for x in t for c in n]), dim=-1)
                 .view(len(n), len(t), -1).mean(1), dim=-1).T, "template by template"),
    (lambda e, n, t: 1 / 0, "ZeroDivisionError"),
])
def test_q1_rejects_plausible_mistakes_with_a_message(answer, says):
    _incorrect(lesson02.q1, answer, says)


def test_the_one_template_case_never_uses_the_bare_template():
    # With the bare "{}" as its only template, name.format(template) would give the right
    # prompt by chance, and that mistake would pass case 1 (the message test above failed
    # about one run in fifty before the first case left "{}" out).
    for seed in range(300):
        first_case = lesson02._classifier_cases(torch.Generator().manual_seed(seed))[0]
        templates = first_case[2]
        assert len(templates) == 1 and templates != ["{}"]


def test_q1_placeholder_is_not_attempted():
    def placeholder(encode_texts, class_names, templates):
        raise NotImplementedError
    assert lesson02.q1.check(placeholder).status == "not attempted"


def test_q1_grading_switch_in_an_answer_fails(grading_on):
    def switch(encode_texts, class_names, templates):
        os.environ["MMLEARN_GRADING"] = "0"
        return torch.zeros(3, 3)
    with pytest.raises(NotCorrect):
        lesson02.q1.check(switch)


# -- Q2: class probabilities ----------------------------------------------------------------

def zero_shot_probabilities(image_features, classifier, logit_scale):
    return (logit_scale * F.normalize(image_features, dim=-1) @ classifier).softmax(dim=-1)


def test_q2_accepts_right_probabilities():
    assert lesson02.q2.check(zero_shot_probabilities).correct
    by_hand = lambda x, w, s: torch.exp(s * (x / x.norm(dim=1, keepdim=True)) @ w) / torch.exp(  # noqa
        s * (x / x.norm(dim=1, keepdim=True)) @ w).sum(dim=1, keepdim=True)
    assert lesson02.q2.check(by_hand).correct


def test_q2_reference_is_the_library_formula():
    features, classifier, scale = lesson02._probability_cases(torch.Generator().manual_seed(2))[1]
    assert torch.allclose(lesson02._library_probabilities(features, classifier, scale),
                          zero_shot_probabilities(features, classifier, scale), atol=1e-6)


@pytest.mark.parametrize("answer, calls", [
    (lambda x, w, s: zeroshot.class_probabilities(x, w, s), "mmlearn.zeroshot.class_probabilities"),
    (lesson02._library_probabilities, "_library_probabilities"),
])
def test_q2_refuses_an_answer_that_delegates(answer, calls):
    _incorrect(lesson02.q2, answer, "calls `", calls)


def test_q2_refuses_hard_coded_answers():
    remembered = [zero_shot_probabilities(*case)
                  for case in lesson02._probability_cases(torch.Generator().manual_seed(0))]
    answers = iter(remembered * 2)
    _incorrect(lesson02.q2, lambda x, w, s: next(answers))
    _incorrect(lesson02.q2, lambda x, w, s: torch.full((5, 3), 1 / 3))


@pytest.mark.parametrize("answer, says", [
    (lambda x, w, s: (s * x @ w).softmax(dim=-1), "length 1 first"),
    (lambda x, w, s: (F.normalize(x, dim=-1) @ w).softmax(dim=-1), "without the model's scale"),
    (lambda x, w, s: (s * F.normalize(x, dim=-1) @ w).softmax(dim=0), "which dimension"),
    (lambda x, w, s: s * (F.normalize(x, dim=-1) @ w).softmax(dim=-1), "*before* the softmax"),
    (lambda x, w, s: s * F.normalize(x, dim=-1) @ w, "(logits)"),
    (lambda x, w, s: (math.exp(s) * F.normalize(x, dim=-1) @ w).softmax(dim=-1),
     "exponentiated the scale"),
    (lambda x, w, s: (F.normalize(x, dim=-1) @ w).argmax(dim=-1), "predicted classes"),
])
def test_q2_rejects_plausible_mistakes_with_a_message(answer, says):
    _incorrect(lesson02.q2, answer, says)


def test_q2_grading_switch_in_an_answer_fails(grading_on):
    def switch(image_features, classifier, logit_scale):
        os.environ["MMLEARN_GRADING"] = "0"
        return image_features
    with pytest.raises(NotCorrect):
        lesson02.q2.check(switch)


# -- Q3: templates for the shape classifier -------------------------------------------------

COLOR_ENSEMBLE = [shapes.with_articles(f"a {color} {{}}") for color in shapes.COLORS]


def test_q3_an_ensemble_over_colors_passes_and_the_lessons_rows_do_not():
    assert lesson02.q3.check(COLOR_ENSEMBLE).correct
    goal, best = lesson02.goal_accuracy()
    assert best in lesson02.LESSON_TEMPLATES
    assert goal == pytest.approx(max(lesson02.template_accuracy(t)
                                     for t in lesson02.LESSON_TEMPLATES.values())
                                 + lesson02.MARGIN)
    for templates in lesson02.LESSON_TEMPLATES.values():
        _incorrect(lesson02.q3, templates, "held-out combinations", f"{goal:.3f}")


@pytest.mark.parametrize("templates", [
    ["a {}"],                          # what the question asked before: one word more
    ["a picture of a {}"],             # the Markdown's example
    ["a green {}"],                    # one colour: closer, not there
    ["a big {}", "a small {}"],        # an ensemble over what the captions do not need
    [shapes.with_articles(f"a {size} {color} {{}}")  # colours x sizes: the sizes pull it down
     for color in shapes.COLORS for size in ("small", "big")],
])
def test_q3_templates_that_do_not_carry_the_missing_word_fail(templates):
    _incorrect(lesson02.q3, templates, "the goal is")


def test_q3_the_goal_leaves_the_solution_a_margin_over_noise():
    goal, _ = lesson02.goal_accuracy()
    ensemble = lesson02.template_accuracy(COLOR_ENSEMBLE)
    assert ensemble - goal >= 0.01      # 20 pictures of the 2,000, not a hair
    assert lesson02.CHECK_PICTURES >= 2000 and lesson02.MARGIN >= 0.02


@pytest.mark.parametrize("answer, says", [
    ("a {}", "not a single string"), ([], "non-empty list"), (["a {} {}"], "exactly one {}"),
    (["a red circle"], "exactly one {}"), (["a {} {0}"], "other braces"),
    (["{x} {}"], "other braces"), ([3], "not a string"), (["a {}"] * 41, "at most"),
])
def test_q3_malformed_templates_are_explained(answer, says):
    _incorrect(lesson02.q3, answer, says)


# -- Q4: predict, then run ----------------------------------------------------------------

def _fresh(question):
    """The same question with nothing committed yet (the module's one keeps its state)."""
    return dataclasses.replace(question)


def test_q4_is_committed_before_the_reveal_and_judged_after():
    q4 = _fresh(lesson02.q4)
    with pytest.raises(NotCommitted):
        q4.reveal()
    assert "add one line of why" in q4.check("c").message  # no reason: nothing stored
    assert q4.check("c: both captions hold the same words").status == "recorded"
    q4.reveal()
    assert q4.check("a: changed my mind after seeing it").correct  # the first one counts


def test_q4_guessing_scores_a_quarter_and_wrong_letters_teach():
    outcomes = []
    for letter in "abcd":
        q4 = _fresh(lesson02.q4)
        q4.check(f"{letter}: a guess made at random")
        q4.reveal()
        feedback = q4.check(f"{letter}: a guess made at random")
        outcomes.append(feedback.correct)
        if not feedback.correct:
            assert '"c"' not in feedback.message and "cell below" in feedback.message
    assert outcomes == [False, False, True, False]
    assert lesson02.q4.points < lesson02.q1.points == lesson02.q2.points == 3


# -- the notebook ---------------------------------------------------------------------------

def test_the_notebook_asks_q1_to_q4_in_order_and_reveals_after_the_prediction():
    from notebook_skeleton import ROOT

    notebook = json.loads((ROOT / "notebooks" / "02_zero_shot_classification.ipynb").read_text())
    sources = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    checks = [s for s in sources if s.strip() in {f"q{n}.check()" for n in range(1, 9)}]
    assert checks == ["q1.check()", "q2.check()", "q3.check()", "q4.check()"]
    reveal = [i for i, s in enumerate(sources) if "q4.reveal()" in s]
    assert len(reveal) == 1 and sources[reveal[0]].startswith("q4.reveal()")
    assert sources.index("q4.check()") < reveal[0]
    assert sum("q1.passed()" in s for s in sources) == 1
    assert sum("q2.passed()" in s for s in sources) == 1
