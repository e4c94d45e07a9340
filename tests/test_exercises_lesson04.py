"""Lesson 04's exercises: every checker accepts a right answer and rejects plausible mistakes."""

import pytest
import torch
import torch.nn.functional as F

from mmlearn import generate
from mmlearn.exercises import lesson04
from mmlearn.vqgan import straight_through, to_unit_range

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------- predict, then run

@pytest.mark.parametrize("question, right, wrongs", [
    (lesson04.q1, "b", "ac")])
def test_predictions_accept_the_right_letter_and_teach_on_a_wrong_one(question, right, wrongs):
    for spelling in (right, right.upper(), f"({right})", f" {right} "):
        assert question.check(spelling).correct
    for wrong in wrongs:
        feedback = question.check(wrong)
        assert feedback.status == "incorrect" and "Run the cell below" in feedback.message
        assert f'"{right}"' not in feedback.message   # the right letter is not given away


# ---------------------------------------------------------------------------- lesson 04

TRANSFORM = generate.cutout_transform(32)


def paint_step(z, optimizer, target, vqgan, clip):
    z_q = vqgan.lookup_codes(vqgan.nearest_codes(z))
    image = to_unit_range(vqgan.decode(straight_through(z, z_q)))
    views = generate.make_cutouts(image, 16, TRANSFORM)
    embeddings = F.normalize(clip.model.encode_image(clip.normalize(views)),
                             dim=-1)
    loss = generate.spherical_distance(embeddings, target).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _no_straight_through(z, optimizer, target, vqgan, clip):
    z_q = vqgan.lookup_codes(vqgan.nearest_codes(z))   # no gradient path back to z
    image = to_unit_range(vqgan.decode(z_q))
    views = generate.make_cutouts(image, 16, TRANSFORM)
    embeddings = F.normalize(clip.model.encode_image(clip.normalize(views)),
                             dim=-1)
    loss = generate.spherical_distance(embeddings, target).mean()
    optimizer.zero_grad()
    if loss.requires_grad:
        loss.backward()
    optimizer.step()
    return loss.item()


def _away_from_the_prompt(z, optimizer, target, vqgan, clip):
    return paint_step(z, optimizer, -target, vqgan, clip)   # minimises the wrong thing


def _returns_the_tensor(z, optimizer, target, vqgan, clip):
    paint_step(z, optimizer, target, vqgan, clip)
    return torch.zeros(3)


def test_lesson04_paint_step_accepts_the_reference_and_the_library_step():
    assert lesson04.q5.check(paint_step).correct

    def library(z, optimizer, target, vqgan, clip):
        return generate.generation_step(z, optimizer, [clip], vqgan,
                                        [(target, torch.ones(1))], TRANSFORM, 16)
    assert lesson04.q5.check(library).correct


@pytest.mark.parametrize("wrong, says", [
    (_no_straight_through, "has not changed"), (_away_from_the_prompt, "should rise"),
    (_returns_the_tensor, "as a number")])
def test_lesson04_paint_step_rejects_plausible_mistakes(wrong, says):
    feedback = lesson04.q5.check(wrong)
    assert feedback.status == "incorrect" and says in feedback.message


def test_lesson04_paint_with_leaves_the_global_generator_alone():
    vqgan, clip = lesson04._course_models()
    state = torch.random.get_rng_state()
    frames, losses = lesson04.paint_with(paint_step, "a red star", vqgan, clip, steps=20)
    assert torch.equal(state, torch.random.get_rng_state())
    assert len(frames) == 3 and frames[0].dtype == torch.uint8 and len(losses) == 20


def test_lesson04_kept_questions():
    from mmlearn.generate import parse_prompts
    assert lesson04.q2.check(lambda s: [(p.text, p.weight) for p in parse_prompts(s)]).correct
    assert lesson04.q3.check(lambda z, z_q: z + (z_q - z).detach()).correct
    assert lesson04.q3.check(lambda z, z_q: z_q.detach()).status == "incorrect"
    assert lesson04.q4.check(256).correct and lesson04.q4.check(16).status == "incorrect"


def test_placeholders_are_not_attempted():
    def placeholder(*args):
        raise NotImplementedError
    for question in (lesson04.q5,):
        assert question.check(placeholder).status == "not attempted"
