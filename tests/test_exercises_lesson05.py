"""Lesson 05's exercises: right answers pass; delegating, hard-coded and plausible wrong ones
fail with a message that teaches; predictions are committed before they are revealed."""

import dataclasses
import os
import re

import pytest
import torch
import torch.nn as nn

from mmlearn import dalle
from mmlearn.exercises import grading, lesson05
from mmlearn.exercises.core import NotCommitted, NotCorrect

pytestmark = pytest.mark.usefixtures("one_thread")


def _refused(feedback, name):
    return feedback.status == "incorrect" and f"calls `{name}`" in feedback.message


# ---------------------------------------------------------------------------- Q1, a prediction

def _fresh_q1():
    return dataclasses.replace(lesson05.q1)  # a question with nothing recorded yet


def test_q1_has_four_choices_and_is_worth_less_than_a_build():
    assert lesson05.q1.predict and lesson05.q1.checker.choices == list("abcd")
    assert lesson05.q1.points < lesson05.q2.points


def test_q1_records_a_prediction_before_the_reveal_and_judges_it_after():
    q1 = _fresh_q1()
    with pytest.raises(NotCommitted):
        q1.reveal()
    assert q1.check("b").status == "incorrect"                  # a letter alone: say why
    recorded = q1.check("b: the words were learnt apart")
    assert recorded.status == "recorded" and "Correct" not in repr(recorded)
    q1.reveal()
    assert q1.check("c: changed my mind after seeing it").correct  # the first one counts


@pytest.mark.parametrize("wrong", ["a: unseen pairs are easier", "c: it never saw them",
                                   "d: colour right, shape lost"])
def test_q1_a_wrong_prediction_is_told_why_after_the_reveal(wrong):
    q1 = _fresh_q1()
    assert q1.check(wrong).status == "recorded"
    q1.reveal()
    feedback = q1.check(wrong)
    assert feedback.status == "incorrect" and '"b"' not in feedback.message
    assert len(feedback.message) > 60


def test_q1_in_grading_mode_a_wrong_prediction_simply_fails(monkeypatch):
    monkeypatch.setitem(grading._STATE, "on", True)
    q1 = _fresh_q1()
    with pytest.raises(NotCorrect):
        q1.check("c: it never saw them")
    assert q1.check("b: the words were learnt apart").correct


# ---------------------------------------------------------------------------- Q2, causal_mask

def causal_mask(n):
    return torch.ones(n, n, dtype=torch.bool).tril()


def test_q2_accepts_a_mask_of_its_own():
    assert lesson05.q2.check(causal_mask).correct
    assert lesson05.q2.check(lambda n: torch.arange(n)[None, :] <= torch.arange(n)[:, None]
                             ).correct


@pytest.mark.parametrize("delegate, name", [
    (dalle.causal_mask, "mmlearn.dalle.causal_mask"),
    (lambda n: dalle.causal_mask(n), "mmlearn.dalle.causal_mask"),
    (lambda n: nn.Transformer.generate_square_subsequent_mask(n) == 0,
     "torch.nn.modules.transformer.Transformer.generate_square_subsequent_mask"),
])
def test_q2_refuses_the_library(delegate, name):
    assert _refused(lesson05.q2.check(delegate), name)


def test_q2_a_slice_of_the_models_own_mask_does_not_pass():
    model, _ = lesson05._course_models()
    stored = model.blocks[0].attention.mask              # 76 x 76, read, not called
    assert lesson05.q2.check(lambda n: stored[:n, :n]).status == "incorrect"


def test_q2_refuses_what_an_earlier_check_returned():
    seen = []

    def recorder(n):
        seen.append(causal_mask(n))
        return seen[-1]
    assert lesson05.q2.check(recorder).correct
    replay = iter(seen[1:] + seen[:1])
    assert lesson05.q2.check(lambda n: next(replay)).status == "incorrect"


@pytest.mark.parametrize("wrong, says", [
    (lambda n: torch.ones(n, n, dtype=torch.bool).triu(), "later"),
    (lambda n: torch.ones(n, n, dtype=torch.bool).tril(-1), "itself"),
    (lambda n: torch.ones(n, n).tril(), "torch.bool"),
    (lambda n: torch.full((n, n), float("-inf")).triu(1), "torch.bool"),      # an additive mask
    (lambda n: torch.ones(n, n, dtype=torch.bool).tril()[:-1], "shape"),
    (lambda n: [[j <= i for j in range(n)] for i in range(n)], "tensor"),
])
def test_q2_rejects_plausible_mistakes(wrong, says):
    feedback = lesson05.q2.check(wrong)
    assert feedback.status == "incorrect" and says in feedback.message, feedback


def test_q2_says_when_true_and_false_are_swapped():
    feedback = lesson05.q2.check(lambda n: ~torch.ones(n, n, dtype=torch.bool).tril())
    assert feedback.status == "incorrect", feedback
    assert "swapped" in feedback.message and "nn.MultiheadAttention" in feedback.message, feedback


# ---------------------------------------------------------------------------- Q3, top_k_filter

def top_k_filter(logits, k):
    kth_largest = logits.topk(k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth_largest, float("-inf"))


def test_q3_accepts_a_filter_of_its_own():
    assert lesson05.q3.check(top_k_filter).correct

    def by_sorting(logits, k):
        kth_largest = logits.sort(dim=-1, descending=True).values[:, k - 1:k]
        out = logits.clone()
        out[logits < kth_largest] = float("-inf")
        return out
    assert lesson05.q3.check(by_sorting).correct


@pytest.mark.parametrize("delegate, name", [
    (dalle.top_k_filter, "mmlearn.dalle.top_k_filter"),
    (lambda logits, k: dalle.top_k_filter(logits, k), "mmlearn.dalle.top_k_filter"),
])
def test_q3_refuses_the_library(delegate, name):
    assert _refused(lesson05.q3.check(delegate), name)


def test_q3_refuses_what_an_earlier_check_returned():
    seen = []

    def recorder(logits, k):
        seen.append(top_k_filter(logits, k))
        return seen[-1]
    assert lesson05.q3.check(recorder).correct
    replay = iter(seen)
    assert lesson05.q3.check(lambda logits, k: next(replay)).status == "incorrect"


def _keep_smallest(logits, k):
    kth_smallest = logits.topk(k, dim=-1, largest=False).values[..., -1:]
    return logits.masked_fill(logits > kth_smallest, float("-inf"))


@pytest.mark.parametrize("wrong, says", [
    (_keep_smallest, "not the k *largest*"),
    (lambda x, k: x.masked_fill(x < x.topk(k, dim=-1).values[..., -1:], 0.0), "nothing became"),
    (lambda x, k: x.masked_fill(x <= x.topk(k, dim=-1).values[..., -1:], float("-inf")),
     "should keep exactly k"),                                                   # off by one
    (lambda x, k: x.masked_fill(x < x.topk(k, dim=-1).values[..., -1:],
                                float("-inf")) - x.amax(-1, keepdim=True), "changed their values"),
    (lambda x, k: x.masked_fill(x < x.topk(k).values.min(), float("-inf")), "should keep"),
    (lambda x, k: x.masked_fill(x < x.topk(k, dim=-1).values[..., -1:], -1e4), "nothing became"),
])
def test_q3_rejects_plausible_mistakes(wrong, says):
    feedback = lesson05.q3.check(wrong)
    assert feedback.status == "incorrect" and says in feedback.message, feedback


def test_q3_refuses_a_filter_that_changes_its_input():
    def in_place(logits, k):
        kth_largest = logits.topk(k, dim=-1).values[..., -1:]
        logits[logits < kth_largest] = float("-inf")
        return logits                              # right values, but the input is gone
    feedback = lesson05.q3.check(in_place)
    assert feedback.status == "incorrect" and "changed the logits" in feedback.message, feedback


def test_q3_a_filter_that_empties_its_input_spoils_nothing():
    def cheat(logits, k):
        logits.fill_(0)
        return logits
    for _ in range(2):
        assert lesson05.q3.check(cheat).status == "incorrect"
    assert lesson05.q3.check(top_k_filter).correct


# ---------------------------------------------------------------------------- Q4, sample_tokens

def sample_tokens(model, text, temperature, top_k, generator):
    hidden, caches = model.transform(model.embed_text(text))
    tokens = []
    for i in range(model.config.image_length):
        logits = model.image_head(hidden[:, -1]) / temperature
        if top_k is not None:
            logits = top_k_filter(logits, top_k)
        token = torch.multinomial(logits.softmax(dim=-1), 1, generator=generator)[:, 0]
        tokens.append(token)
        hidden, caches = model.transform(model.embed_image(token[:, None], start=i), caches)
    return torch.stack(tokens, dim=1)


def _with_the_library_filter(model, text, temperature, top_k, generator):
    """The lesson's fallback when Q3 does not pass yet: allowed."""
    hidden, caches = model.transform(model.embed_text(text))
    tokens = []
    for i in range(model.config.image_length):
        logits = dalle.top_k_filter(model.image_head(hidden[:, -1]) / temperature, top_k)
        token = torch.multinomial(logits.softmax(dim=-1), 1, generator=generator)[:, 0]
        tokens.append(token)
        hidden, caches = model.transform(model.embed_image(token[:, None], start=i), caches)
    return torch.stack(tokens, dim=1)


def _without_cache(model, text, temperature, top_k, generator):
    """Correct too: the whole sequence through the model at every step (slower)."""
    image = text.new_zeros(len(text), 0)
    for _ in range(model.config.image_length):
        logits = model(text, image)[1][:, -1] / temperature
        if top_k is not None:
            logits = top_k_filter(logits, top_k)
        token = torch.multinomial(logits.softmax(dim=-1), 1, generator=generator)
        image = torch.cat([image, token], dim=1)
    return image


@pytest.mark.slow
def test_q4_accepts_a_loop_of_its_own():
    assert lesson05.q4.check(sample_tokens).correct


@pytest.mark.slow
def test_q4_accepts_the_library_filter_the_lesson_falls_back_on():
    assert lesson05.q4.check(_with_the_library_filter).correct


@pytest.mark.slow
def test_q4_accepts_a_loop_without_the_cache():
    assert lesson05.q4.check(_without_cache).correct


def _with_pick_tokens(model, text, temperature, top_k, generator):
    hidden, caches = model.transform(model.embed_text(text))
    tokens = []
    for i in range(model.config.image_length):
        token = dalle.pick_tokens(model.image_head(hidden[:, -1]), temperature, top_k, generator)
        tokens.append(token)
        hidden, caches = model.transform(model.embed_image(token[:, None], start=i), caches)
    return torch.stack(tokens, dim=1)


@pytest.mark.parametrize("delegate, name", [
    (dalle.sample_image_tokens, "mmlearn.dalle.sample_image_tokens"),
    (lambda model, text, t, k, g: dalle.sample_image_tokens(model, text, t, k, g),
     "mmlearn.dalle.sample_image_tokens"),
    (_with_pick_tokens, "mmlearn.dalle.pick_tokens"),
])
def test_q4_refuses_the_library_samplers(delegate, name):
    assert _refused(lesson05.q4.check(delegate), name)


@pytest.mark.slow
def test_q4_refuses_what_an_earlier_check_returned():
    seen = []

    def recorder(model, text, temperature, top_k, generator):
        seen.append(sample_tokens(model, text, temperature, top_k, generator))
        return seen[-1]
    assert lesson05.q4.check(recorder).correct
    replay = iter(seen)
    assert lesson05.q4.check(lambda *args: next(replay)).status == "incorrect"


def _ignores_temperature(model, text, temperature, top_k, generator):
    return sample_tokens(model, text, 1.0, top_k, generator)


def _times_temperature(model, text, temperature, top_k, generator):
    return sample_tokens(model, text, 1 / temperature, top_k, generator)


def _no_generator(model, text, temperature, top_k, generator):
    return sample_tokens(model, text, temperature, top_k, None)


def _greedy_always(model, text, temperature, top_k, generator):
    return sample_tokens(model, text, temperature, 1, generator)


def _ignores_top_k(model, text, temperature, top_k, generator):
    return sample_tokens(model, text, temperature, None, generator)


def _never_feeds_back(model, text, temperature, top_k, generator):
    hidden, _ = model.transform(model.embed_text(text))
    logits = model.image_head(hidden[:, -1]) / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    return torch.multinomial(logits.softmax(dim=-1), model.config.image_length,
                             replacement=True, generator=generator)


@pytest.mark.slow
@pytest.mark.parametrize("wrong, says", [
    (_times_temperature, "Divide the logits"), (_ignores_temperature, "Divide the logits"),
    (_no_generator, "seeded the same"),
    (_greedy_always, "different seeds"), (_ignores_top_k, "top_k=1"),
    (_never_feeds_back, "does not go back into the model"),
    (lambda model, text, t, k, g: sample_tokens(model, text, t, k, g)[:, :8], "shape")])
def test_q4_rejects_plausible_mistakes(wrong, says):
    feedback = lesson05.q4.check(wrong)
    assert feedback.status == "incorrect" and says in feedback.message, feedback


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
def test_q4_an_answer_that_spoils_its_model_spoils_nothing_for_the_next_check():
    model, _ = lesson05._course_models()
    before = _state(model)

    def vandal(model, text, temperature, top_k, generator):
        model.train()
        for parameter in model.parameters():
            parameter.zero_()
        return sample_tokens(model, text, temperature, top_k, generator)

    assert lesson05.q4.check(vandal).status == "incorrect"
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert lesson05.q4.check(sample_tokens).correct


def test_a_cut_prompt_warns_at_the_line_that_called_mmlearn():
    model, vqgan = lesson05._course_models()
    with pytest.warns(UserWarning, match="reads only 12") as caught:
        dalle.sample(model, vqgan, "a big red circle on the left and a small blue square at "
                       "the top of the picture", n=1)
    assert {w.filename for w in caught if "reads only" in str(w.message)} == {__file__}


def test_placeholders_are_not_attempted():
    def placeholder(*args):
        raise NotImplementedError
    for question in (lesson05.q2, lesson05.q3, lesson05.q4):
        assert question.check(placeholder).status == "not attempted"


def test_build_questions_forbid_their_library_and_are_worth_the_most():
    for question in (lesson05.q2, lesson05.q3, lesson05.q4):
        assert question.forbidden and question.points == 3


BUILDS = [lesson05.q2, lesson05.q3, lesson05.q4]


@pytest.mark.parametrize("question", BUILDS, ids=lambda q: q.name)
def test_a_wrong_answer_that_switches_grading_off_still_fails_in_grading(question, monkeypatch):
    monkeypatch.setenv("MMLEARN_GRADING", "1")          # put back after the test
    monkeypatch.setitem(grading._STATE, "on", True)

    def switch_off(*args):
        os.environ["MMLEARN_GRADING"] = "0"
        return None
    with pytest.raises(NotCorrect):
        question.check(switch_off)


@pytest.mark.parametrize("question", BUILDS, ids=lambda q: q.name)
@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
def test_an_answer_that_interrupts_or_exits_gets_a_verdict(question, stop):
    def leave(*args):
        raise stop
    assert question.check(leave).status == "incorrect"


ALL_QUESTIONS = [lesson05.q1, lesson05.q2, lesson05.q3, lesson05.q4]


@pytest.mark.slow
@pytest.mark.parametrize("question", ALL_QUESTIONS, ids=lambda q: q.name)
def test_the_solution_shown_passes_its_check(question):
    """The first code block of each solution text, run with the notebook's names, passes."""
    block = re.findall(r"```python\n(.*?)```", question.solution_text, re.S)[0]
    namespace = {"torch": torch, "dalle": dalle, "keep_top_k": dalle.top_k_filter}
    exec(block, namespace)  # noqa: S102 - the course's own solution text
    answer = namespace[question.variable]
    if question.predict:
        assert question.checker(answer) is None
    else:
        assert question.check(answer).correct
