"""Lessons 03-05: every checker accepts the reference solution and rejects plausible mistakes.

The build exercises are checked by behaviour (what the learner's code does to a search,
a picture or a sample), so the tests pass both working solutions and typical broken ones.
"""

import pytest
import torch
import torch.nn.functional as F

from mmlearn import dalle, generate
from mmlearn.exercises import lesson03, lesson04, lesson05
from mmlearn.vqgan import straight_through, to_unit_range

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------- predict, then run

@pytest.mark.parametrize("question, right, wrongs", [
    (lesson03.q1, "a", "bc"), (lesson04.q1, "b", "ac"), (lesson05.q1, "b", "ac")])
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


# ---------------------------------------------------------------------------- lesson 05

def sample_tokens(model, text, temperature, top_k, generator):
    hidden, caches = model.transform(model.embed_text(text))
    tokens = []
    for i in range(model.config.image_length):
        logits = model.image_head(hidden[:, -1]) / temperature
        if top_k is not None:
            logits = dalle.top_k_filter(logits, top_k)
        token = torch.multinomial(logits.softmax(dim=-1), 1, generator=generator)[:, 0]
        tokens.append(token)
        hidden, caches = model.transform(model.embed_image(token[:, None], start=i), caches)
    return torch.stack(tokens, dim=1)


def _without_cache(model, text, temperature, top_k, generator):
    """Correct too: the whole sequence through the model at every step (slower)."""
    image = text.new_zeros(len(text), 0)
    for _ in range(model.config.image_length):
        logits = model(text, image)[1][:, -1] / temperature
        logits = dalle.top_k_filter(logits, top_k)
        token = torch.multinomial(logits.softmax(dim=-1), 1, generator=generator)
        image = torch.cat([image, token], dim=1)
    return image


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
    logits = dalle.top_k_filter(model.image_head(hidden[:, -1]) / temperature, top_k)
    return torch.multinomial(logits.softmax(dim=-1), model.config.image_length,
                             replacement=True, generator=generator)


def test_lesson05_sampler_accepts_working_loops():
    assert lesson05.q4.check(sample_tokens).correct
    assert lesson05.q4.check(_without_cache).correct


@pytest.mark.parametrize("wrong, says", [
    (_times_temperature, "Divide the logits"), (_ignores_temperature, "Divide the logits"),
    (_no_generator, "seeded the same"),
    (_greedy_always, "different seeds"), (_ignores_top_k, "top_k=1"),
    (_never_feeds_back, "top_k=1"),
    (lambda model, text, t, k, g: sample_tokens(model, text, t, k, g)[:, :8], "shape")])
def test_lesson05_sampler_rejects_plausible_mistakes(wrong, says):
    feedback = lesson05.q4.check(wrong)
    assert feedback.status == "incorrect" and says in feedback.message


def test_lesson05_kept_questions():
    assert lesson05.q2.check(dalle.causal_mask).correct
    assert lesson05.q2.check(lambda n: torch.ones(n, n, dtype=torch.bool).triu()).status == \
        "incorrect"
    assert lesson05.q3.check(dalle.top_k_filter).correct
    keep_smallest = lambda x, k: x.masked_fill(x > x.topk(k, largest=False).values[..., -1:],  # noqa
                                               float("-inf"))
    assert lesson05.q3.check(keep_smallest).status == "incorrect"


def test_a_cut_prompt_warns_at_the_line_that_called_mmlearn():
    model, vqgan = lesson05._course_models()
    with pytest.warns(UserWarning, match="reads only 12") as caught:
        dalle.sample(model, vqgan, "a big red circle on the left and a small blue square at "
                       "the top of the picture", n=1)
    assert {w.filename for w in caught if "reads only" in str(w.message)} == {__file__}


def test_placeholders_are_not_attempted():
    def placeholder(*args):
        raise NotImplementedError
    for question in (lesson03.q2, lesson04.q5, lesson05.q4):
        assert question.check(placeholder).status == "not attempted"
