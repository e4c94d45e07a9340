"""Lesson 04's exercises: right answers pass; delegating, hard-coded and plausible wrong ones
fail with a message that teaches; predictions are committed before they are revealed."""

import dataclasses
import os
import re

import pytest
import torch
import torch.nn.functional as F

from mmlearn import vqgan_clip
from mmlearn.exercises import grading, lesson04
from mmlearn.exercises.core import NotCommitted, NotCorrect
from mmlearn.vqgan import straight_through, to_unit_range

pytestmark = pytest.mark.usefixtures("one_thread")


def _refused(feedback, name):
    return feedback.status == "incorrect" and f"calls `{name}`" in feedback.message


# ---------------------------------------------------------------------------- Q1, a prediction

def _fresh_q1():
    return dataclasses.replace(lesson04.q1)  # a question with nothing recorded yet


def test_q1_has_four_choices_and_is_worth_less_than_a_build():
    assert lesson04.q1.predict and lesson04.q1.checker.choices == list("abcd")
    assert lesson04.q1.points < lesson04.q2.points


def test_q1_records_a_prediction_before_the_reveal_and_judges_it_after():
    q1 = _fresh_q1()
    with pytest.raises(NotCommitted):
        q1.reveal()
    assert q1.check("c").status == "incorrect"                 # a letter alone: say why
    assert q1.check("e: no idea at all").status == "incorrect"  # not a choice
    recorded = q1.check("c: pushed away from purple")
    assert recorded.status == "recorded" and "Correct" not in repr(recorded)
    q1.reveal()
    assert q1.check("c: again, after the reveal").correct
    assert q1.check("a: changed my mind later").correct        # the first prediction counts


@pytest.mark.parametrize("wrong", ["a: purple is named", "b: too weak to matter",
                                   "d: the parts cancel out"])
def test_q1_a_wrong_prediction_is_told_why_after_the_reveal(wrong):
    q1 = _fresh_q1()
    assert q1.check(wrong).status == "recorded"
    q1.reveal()
    feedback = q1.check(wrong)
    assert feedback.status == "incorrect" and '"c"' not in feedback.message
    assert len(feedback.message) > 60                          # a reason, not just "no"


def test_q1_in_grading_mode_a_wrong_prediction_simply_fails(monkeypatch):
    monkeypatch.setitem(grading._STATE, "on", True)
    q1 = _fresh_q1()
    with pytest.raises(NotCorrect):
        q1.check("a: purple is named")
    assert q1.check("c: pushed away from purple").correct


# ---------------------------------------------------------------------------- Q2, parse_prompt

def parse_prompt(spec):
    parts = []
    for part in spec.split("|"):
        if ":" in part:
            text, _, weight = part.rpartition(":")
        else:
            text, weight = part, "1"
        parts.append((text.strip(), float(weight)))
    return parts


def test_q2_accepts_a_parser_of_its_own():
    assert lesson04.q2.check(parse_prompt).correct


@pytest.mark.parametrize("delegate, name", [
    (lambda s: [(p.text, p.weight) for p in vqgan_clip.parse_prompts(s)],
     "mmlearn.vqgan_clip.parse_prompts"),
    (lambda s: lesson04._parse_prompt(s), "mmlearn.exercises.lesson04._parse_prompt"),
    (lambda s: [(p.text, p.weight) for p in vqgan_clip._checked_prompts(s, ())[0]],
     "mmlearn.vqgan_clip.parse_prompts"),                        # caught inside the helper
])
def test_q2_refuses_an_answer_that_calls_the_library(delegate, name):
    assert _refused(lesson04.q2.check(delegate), name)


def test_q2_refuses_what_an_earlier_check_returned():
    seen = []

    def recorder(spec):
        seen.append(parse_prompt(spec))
        return seen[-1]
    assert lesson04.q2.check(recorder).correct
    replay = iter(seen)
    assert lesson04.q2.check(lambda spec: next(replay)).status == "incorrect"
    assert lesson04.q2.check(lambda spec: [("a red circle", 1.0)]).status == "incorrect"


def _weight_as_text(spec):
    return [(text.strip(), weight) for text, weight in parse_prompt(spec)
            for weight in [str(weight)]]


def _first_colon(spec):
    parts = []
    for part in spec.split("|"):
        text, _, weight = part.partition(":")
        parts.append((text.strip(), float(weight) if weight.strip() else 1.0))
    return parts


@pytest.mark.parametrize("wrong, says", [
    (lambda s: [(p.rpartition(":")[0] if ":" in p else p,
                 float(p.rpartition(":")[2]) if ":" in p else 1.0) for p in s.split("|")],
     "strip them"),
    (_weight_as_text, "string"),
    (_first_colon, "test case"),
])
def test_q2_rejects_plausible_mistakes(wrong, says):
    feedback = lesson04.q2.check(wrong)
    assert feedback.status == "incorrect" and says in feedback.message


# ---------------------------------------------------------------------------- Q3, straight_through

def test_q3_accepts_the_straight_through_estimator():
    assert lesson04.q3.check(lambda z, z_q: z + (z_q - z).detach()).correct
    assert lesson04.q3.check(lambda z, z_q: z - (z - z_q).detach()).correct


def test_q3_refuses_the_library():
    assert _refused(lesson04.q3.check(lambda z, z_q: straight_through(z, z_q)),
                    "mmlearn.vqgan.straight_through")


def test_q3_refuses_what_an_earlier_check_returned():
    seen = []

    def recorder(z, z_q):
        seen.append(z_q.detach().clone())
        return z + (z_q - z).detach()
    assert lesson04.q3.check(recorder).correct
    remembered = seen[0]
    assert lesson04.q3.check(lambda z, z_q: remembered).status == "incorrect"


@pytest.mark.parametrize("wrong, says", [
    (lambda z, z_q: z_q.detach(), "no gradient can flow"),
    (lambda z, z_q: z_q, "gradient with respect to z"),
    (lambda z, z_q: z + (z_q - z), "gradient with respect to z"),
    (lambda z, z_q: z.detach() + (z_q - z), "gradient with respect to z"),
    (lambda z, z_q: z, "must equal z_q"),
])
def test_q3_rejects_plausible_mistakes(wrong, says):
    feedback = lesson04.q3.check(wrong)
    assert feedback.status == "incorrect" and says in feedback.message


def test_q4_counts_tokens():
    assert lesson04.q4.check(256).correct and lesson04.q4.check(16).status == "incorrect"


# -------------------------------------------------------------------- Q5, spherical_distance

def spherical_distance(x, y):
    return 2 * ((x - y).norm(dim=-1) / 2).clamp(max=1).arcsin() ** 2


def test_q5_accepts_the_spherical_distance_however_the_length_is_taken():
    assert lesson04.q5.check(spherical_distance).correct
    assert lesson04.q5.check(
        lambda x, y: 2 * (((x - y) ** 2).sum(-1).sqrt() / 2).clamp(max=1).arcsin() ** 2).correct


@pytest.mark.parametrize("delegate, name", [
    (lambda x, y: vqgan_clip.spherical_distance(x, y), "mmlearn.vqgan_clip.spherical_distance"),
    (vqgan_clip.spherical_distance, "mmlearn.vqgan_clip.spherical_distance"),
    (lambda x, y: vqgan_clip.prompt_loss(x, y, torch.ones(len(y))) + 0 * x[..., 0],
     "mmlearn.vqgan_clip.spherical_distance"),                   # caught inside prompt_loss
])
def test_q5_refuses_the_library(delegate, name):
    assert _refused(lesson04.q5.check(delegate), name)


def test_q5_refuses_what_an_earlier_check_returned():
    seen = []

    def recorder(x, y):
        seen.append(spherical_distance(x, y))
        return seen[-1]
    assert lesson04.q5.check(recorder).correct
    replay = iter(seen)
    assert lesson04.q5.check(lambda x, y: next(replay)).status == "incorrect"
    assert lesson04.q5.check(lambda x, y: torch.zeros(x.shape[:-1])).status == "incorrect"


@pytest.mark.parametrize("wrong, says", [
    (lambda x, y: 2 * ((x - y).norm(dim=-1) / 2).arcsin() ** 2, "clamp it"),        # NaN at pi
    (lambda x, y: torch.arccos((x * y).sum(-1).clamp(-1, 1)) ** 2 / 2,                # same angle,
     "nearly identical vectors your values are off"),                                # lost digits
    (lambda x, y: 1 - (x * y).sum(-1), "values are off"),                             # 1 - cosine
    (lambda x, y: ((x - y).norm(dim=-1) / 2).clamp(max=1).arcsin() ** 2, "values are off"),
    (lambda x, y: 2 * ((x - y).norm() / 2).clamp(max=1).arcsin() ** 2, "shape"),      # all rows
    (lambda x, y: 2 * ((x - y).norm(dim=0) / 2).clamp(max=1).arcsin() ** 2, "shape"),
])
def test_q5_rejects_plausible_mistakes(wrong, says):
    feedback = lesson04.q5.check(wrong)
    assert feedback.status == "incorrect" and says in feedback.message, feedback


# ---------------------------------------------------------------------------- Q6, paint_step

TRANSFORM = vqgan_clip.cutout_transform(32)


def paint_step(z, optimizer, target, vqgan, clip):
    z_q = vqgan.lookup_codes(vqgan.nearest_codes(z))
    image = to_unit_range(vqgan.decode(z + (z_q - z).detach()))
    views = vqgan_clip.make_cutouts(image, 16, TRANSFORM)
    embeddings = F.normalize(clip.model.encode_image(clip.normalize(views)), dim=-1)
    loss = spherical_distance(embeddings, target).mean()
    optimizer.zero_grad()
    loss.backward(inputs=[z])
    optimizer.step()
    return loss.item()


def _library_step(z, optimizer, target, vqgan, clip):
    return vqgan_clip.generation_step(z, optimizer, [clip], vqgan,
                                    [(target, torch.ones(1))], TRANSFORM, 16)


def _decode_latent_and_prompt_loss(z, optimizer, target, vqgan, clip):
    """Part 3's cell wrapped in a function: the library snaps and scores for it."""
    image = vqgan_clip.decode_latent(vqgan, z)
    embeddings = clip.model.encode_image(clip.normalize(vqgan_clip.make_cutouts(image, 16,
                                                                            TRANSFORM)))
    loss = vqgan_clip.prompt_loss(embeddings, target, torch.ones(1))
    optimizer.zero_grad()
    loss.backward(inputs=[z])
    optimizer.step()
    return loss.item()


def _with_the_library_pieces(z, optimizer, target, vqgan, clip):
    """The lesson's fallback when Q3 or Q5 do not pass yet: allowed."""
    z_q = vqgan.lookup_codes(vqgan.nearest_codes(z))
    image = to_unit_range(vqgan.decode(straight_through(z, z_q)))
    views = vqgan_clip.make_cutouts(image, 16, TRANSFORM)
    embeddings = F.normalize(clip.model.encode_image(clip.normalize(views)), dim=-1)
    loss = vqgan_clip.spherical_distance(embeddings, target).mean()
    optimizer.zero_grad()
    loss.backward(inputs=[z])
    optimizer.step()
    return loss.item()


def test_q6_accepts_a_step_of_its_own():
    assert lesson04.q6.check(paint_step).correct


def test_q6_accepts_the_library_pieces_the_lesson_falls_back_on():
    assert lesson04.q6.check(_with_the_library_pieces).correct


@pytest.mark.parametrize("delegate, name", [
    (_library_step, "mmlearn.vqgan_clip.generation_step"),
    (_decode_latent_and_prompt_loss, "mmlearn.vqgan_clip.decode_latent"),
    (lambda z, optimizer, target, vqgan, clip: vqgan_clip.generate("a red star", clip, vqgan,
                                                                 steps=1).losses[0],
     "mmlearn.vqgan_clip.decode_latent"),                        # caught inside generate
])
def test_q6_refuses_the_library_step_and_its_shortcuts(delegate, name):
    assert _refused(lesson04.q6.check(delegate), name)


def _jumps_to(remembered):
    def step(z, optimizer, target, vqgan, clip):
        loss = paint_step(z, optimizer, target, vqgan, clip)   # looks like a step...
        with torch.no_grad():
            z.copy_(remembered)                                # ...then lands where it wants
        return loss
    return step


@pytest.mark.slow
def test_q6_refuses_a_step_that_sets_z_to_a_remembered_picture():
    seen = {}

    def recorder(z, optimizer, target, vqgan, clip):
        loss = paint_step(z, optimizer, target, vqgan, clip)
        seen["z"] = z.detach().clone()
        return loss
    assert lesson04.q6.check(recorder).correct
    feedback = lesson04.q6.check(_jumps_to(seen["z"]))   # the red star of the last check
    assert feedback.status == "incorrect" and "further than one optimiser step" in \
        feedback.message


def _no_straight_through(z, optimizer, target, vqgan, clip):
    z_q = vqgan.lookup_codes(vqgan.nearest_codes(z))   # no gradient path back to z
    image = to_unit_range(vqgan.decode(z_q))
    views = vqgan_clip.make_cutouts(image, 16, TRANSFORM)
    embeddings = F.normalize(clip.model.encode_image(clip.normalize(views)), dim=-1)
    loss = spherical_distance(embeddings, target).mean()
    optimizer.zero_grad()
    if loss.requires_grad:
        loss.backward()
    optimizer.step()
    return loss.item()


def _no_snapping(z, optimizer, target, vqgan, clip):
    image = to_unit_range(vqgan.decode(z))              # the decoder never sees real codes
    views = vqgan_clip.make_cutouts(image, 16, TRANSFORM)
    embeddings = F.normalize(clip.model.encode_image(clip.normalize(views)), dim=-1)
    loss = spherical_distance(embeddings, target).mean()
    optimizer.zero_grad()
    loss.backward(inputs=[z])
    optimizer.step()
    return loss.item()


def _one_view(z, optimizer, target, vqgan, clip):
    z_q = vqgan.lookup_codes(vqgan.nearest_codes(z))
    image = to_unit_range(vqgan.decode(z + (z_q - z).detach()))
    embeddings = F.normalize(clip.model.encode_image(clip.normalize(image)), dim=-1)
    loss = spherical_distance(embeddings, target).mean()
    optimizer.zero_grad()
    loss.backward(inputs=[z])
    optimizer.step()
    return loss.item()


def _away_from_the_prompt(z, optimizer, target, vqgan, clip):
    return paint_step(z, optimizer, -target, vqgan, clip)   # minimises the wrong thing


def _returns_the_tensor(z, optimizer, target, vqgan, clip):
    paint_step(z, optimizer, target, vqgan, clip)
    return torch.zeros(3)


def _never_steps(z, optimizer, target, vqgan, clip):
    return 0.25                                              # a remembered loss, nothing done


@pytest.mark.parametrize("wrong, says", [
    (_no_straight_through, "has not changed"), (_no_snapping, "not codebook entries"),
    (_one_view, "single view"), (_away_from_the_prompt, "should rise"),
    (_returns_the_tensor, "as a number"), (_never_steps, "never decoded")])
def test_q6_rejects_plausible_mistakes(wrong, says):
    feedback = lesson04.q6.check(wrong)
    assert feedback.status == "incorrect" and says in feedback.message, feedback


def _raw_embeddings(z, optimizer, target, vqgan, clip):
    """CLIP's embeddings as they come (norm in the hundreds): |x - y| / 2 clamps to 1."""
    z_q = vqgan.lookup_codes(vqgan.nearest_codes(z))
    image = to_unit_range(vqgan.decode(z + (z_q - z).detach()))
    views = vqgan_clip.make_cutouts(image, 16, TRANSFORM)
    loss = spherical_distance(clip.model.encode_image(clip.normalize(views)), target).mean()
    optimizer.zero_grad()
    loss.backward(inputs=[z])
    optimizer.step()
    return loss.item()


def _one_view_sixteen_times(z, optimizer, target, vqgan, clip):
    z_q = vqgan.lookup_codes(vqgan.nearest_codes(z))
    image = to_unit_range(vqgan.decode(z + (z_q - z).detach()))
    views = image.repeat(16, 1, 1, 1)                        # a batch of 16, but one view
    embeddings = F.normalize(clip.model.encode_image(clip.normalize(views)), dim=-1)
    loss = spherical_distance(embeddings, target).mean()
    optimizer.zero_grad()
    loss.backward(inputs=[z])
    optimizer.step()
    return loss.item()


def _never_zeroes(z, optimizer, target, vqgan, clip):
    z_q = vqgan.lookup_codes(vqgan.nearest_codes(z))
    image = to_unit_range(vqgan.decode(z + (z_q - z).detach()))
    views = vqgan_clip.make_cutouts(image, 16, TRANSFORM)
    embeddings = F.normalize(clip.model.encode_image(clip.normalize(views)), dim=-1)
    loss = spherical_distance(embeddings, target).mean()
    loss.backward(inputs=[z])                                # gradients pile up
    optimizer.step()
    return loss.item()


def _zeroes_after_the_step(z, optimizer, target, vqgan, clip):
    """Correct too: the gradients are zeroed after the update instead of before."""
    z_q = vqgan.lookup_codes(vqgan.nearest_codes(z))
    image = to_unit_range(vqgan.decode(z + (z_q - z).detach()))
    views = vqgan_clip.make_cutouts(image, 16, TRANSFORM)
    embeddings = F.normalize(clip.model.encode_image(clip.normalize(views)), dim=-1)
    loss = spherical_distance(embeddings, target).mean()
    loss.backward(inputs=[z])
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


def test_q6_says_the_loss_is_flat_when_the_embeddings_are_not_unit_length():
    feedback = lesson04.q6.check(_raw_embeddings)
    assert feedback.status == "incorrect", feedback
    assert "flat" in feedback.message and "unit length" in feedback.message, feedback


@pytest.mark.parametrize("wrong, says", [
    (_one_view_sixteen_times, "all the same picture"), (_never_zeroes, "zeroed")])
def test_q6_rejects_copies_of_one_view_and_gradients_that_pile_up(wrong, says):
    feedback = lesson04.q6.check(wrong)
    assert feedback.status == "incorrect" and says in feedback.message, feedback


@pytest.mark.slow
def test_q6_accepts_a_step_that_zeroes_the_gradients_after_the_update():
    assert lesson04.q6.check(_zeroes_after_the_step).correct


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.mark.slow
def test_q6_an_answer_that_spoils_its_models_spoils_nothing_for_the_next_check():
    vqgan, clip = lesson04._course_models()
    before = _state(vqgan), _state(clip.model)

    def vandal(z, optimizer, target, vqgan, clip):
        vqgan.train()
        clip.model.train()
        with torch.no_grad():
            for parameter in [*vqgan.parameters(), *clip.model.parameters()]:
                parameter.zero_()
        return paint_step(z, optimizer, target, vqgan, clip)

    assert lesson04.q6.check(vandal).status == "incorrect"
    assert not vqgan.training and not clip.model.training
    for saved, model in zip(before, (vqgan, clip.model)):
        assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    assert lesson04.q6.check(paint_step).correct


def test_paint_with_leaves_the_global_generator_alone():
    vqgan, clip = lesson04._course_models()
    state = torch.random.get_rng_state()
    frames, losses = lesson04.paint_with(paint_step, "a red star", vqgan, clip, steps=20)
    assert torch.equal(state, torch.random.get_rng_state())
    assert len(frames) == 3 and frames[0].dtype == torch.uint8 and len(losses) == 20


def test_placeholders_are_not_attempted():
    def placeholder(*args):
        raise NotImplementedError
    for question in (lesson04.q2, lesson04.q3, lesson04.q5, lesson04.q6):
        assert question.check(placeholder).status == "not attempted"


def test_build_questions_forbid_their_library_and_are_worth_the_most():
    for question in (lesson04.q2, lesson04.q3, lesson04.q5, lesson04.q6):
        assert question.forbidden and question.points == 3
    assert lesson04.q4.points == 2


BUILDS = [lesson04.q2, lesson04.q3, lesson04.q5, lesson04.q6]


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


ALL_QUESTIONS = [lesson04.q1, lesson04.q2, lesson04.q3, lesson04.q4, lesson04.q5, lesson04.q6]


@pytest.mark.slow
@pytest.mark.parametrize("question", ALL_QUESTIONS, ids=lambda q: q.name)
def test_the_solution_shown_passes_its_check(question):
    """The first code block of each solution text, run with the notebook's names, passes."""
    block = re.findall(r"```python\n(.*?)```", question.solution_text, re.S)[0]
    namespace = {"torch": torch, "vqgan_clip": vqgan_clip, "to_unit_range": to_unit_range,
                 "transform": TRANSFORM, "snap_to_codes": straight_through,
                 "distance": vqgan_clip.spherical_distance}
    exec(block, namespace)  # noqa: S102 - the course's own solution text
    answer = namespace[question.variable]
    if question.predict:
        assert question.checker(answer) is None
    else:
        assert question.check(answer).correct
