"""Lesson 05's exercises: every checker accepts a right answer and rejects plausible mistakes."""

import pytest
import torch

from mmlearn import dalle
from mmlearn.exercises import lesson05

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------- predict, then run

@pytest.mark.parametrize("question, right, wrongs", [
    (lesson05.q1, "b", "ac")])
def test_predictions_accept_the_right_letter_and_teach_on_a_wrong_one(question, right, wrongs):
    for spelling in (right, right.upper(), f"({right})", f" {right} "):
        assert question.check(spelling).correct
    for wrong in wrongs:
        feedback = question.check(wrong)
        assert feedback.status == "incorrect" and "Run the cell below" in feedback.message
        assert f'"{right}"' not in feedback.message   # the right letter is not given away


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
    for question in (lesson05.q4,):
        assert question.check(placeholder).status == "not attempted"
