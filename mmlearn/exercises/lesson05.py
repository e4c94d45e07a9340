"""Exercises of lesson 05: DALL-E's causal mask, and how it samples.

Q1 predicts, before the lesson measures it, how well the tiny DALL-E draws colour x shape
pairs it never saw; Q2 builds the causal mask, Q3 writes top-k filtering, Q4 builds the
sampling loop (temperature, top-k, the same seed giving the same tokens), with which the
lesson then draws.
"""

import functools

import torch

from mmlearn import dalle
from mmlearn.config import one_cpu_thread
from mmlearn.exercises.core import (
    Incorrect,
    NotAttempted,
    Question,
    choice_checker,
    function_checker,
)


def _check_mask(fn) -> None:
    """Run the learner's causal_mask on a few sizes and say what is wrong, in words."""
    if not callable(fn):
        raise Incorrect(f"expected a function, got a {type(fn).__name__}.")
    for n in (1, 4, 76):
        try:
            mask = torch.as_tensor(fn(n))
        except NotImplementedError:
            raise NotAttempted() from None
        except Exception as error:  # the learner's bug, reported as feedback
            raise Incorrect(f"causal_mask({n}) raised {type(error).__name__}: {error}") from None
        if mask.shape != (n, n):
            raise Incorrect(f"causal_mask({n}) has shape {tuple(mask.shape)}, not ({n}, {n}).")
        if mask.dtype != torch.bool:
            raise Incorrect(f"causal_mask({n}) holds {mask.dtype}; use True/False (torch.bool).")
        if mask.triu(1).any():
            raise Incorrect(f"in causal_mask({n}) some position may look at a *later* one "
                            f"(True above the diagonal): that is the future it must predict.")
        if not mask.equal(dalle.causal_mask(n)):
            raise Incorrect(f"in causal_mask({n}) some position may not look at itself or at "
                            f"an earlier position; it should see all of them.")


def _logits(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 3


q2 = Question(
    name="q2",
    variable="causal_mask",
    checker=_check_mask,
    hint_text="Return a bool tensor of shape [n, n] where `mask[i, j]` is True when position i "
              "may attend to position j: itself and everything before it (j <= i). Draw it "
              "for n = 3 on paper first: which triangle of the matrix is True?",
    solution_text="```python\ndef causal_mask(n):\n"
                  "    return torch.ones(n, n, dtype=torch.bool).tril()\n```",
)

q3 = Question(
    name="q3",
    variable="top_k_filter",
    checker=function_checker(dalle.top_k_filter, [
        (torch.tensor([[1.0, 3.0, 2.0, 0.5]]), 2),
        (_logits(3, 256, seed=0), 1),
        (_logits(8, 256, seed=1), 64),
    ]),
    hint_text="For each row, find the k-th largest logit (torch can give you the k largest "
              "values of each row). Every logit smaller than it must get probability 0 after "
              "the softmax: which logit value does that? Leave the input tensor unchanged.",
    solution_text="```python\ndef top_k_filter(logits, k):\n"
                  "    kth_largest = logits.topk(k, dim=-1).values[..., -1:]\n"
                  "    return logits.masked_fill(logits < kth_largest, float('-inf'))\n```",
)


# ---------------------------------------------------------------------------- Q1

q1 = Question(
    name="q1",
    variable="prediction_held_out",
    checker=choice_checker("b", "abc", why_not={
        "a": "nothing makes a pair the model never saw easier than one it saw many times. "
             "Run the cell below.",
        "c": "the model saw every colour and every shape, only not these pairs, and it reads "
             "the caption word by word. Run the cell below."}),
    hint_text="The model never saw a red triangle, but it saw red in other shapes and "
              "triangles in other colours, and the caption's words come in one by one.",
    solution_text="```python\nprediction_held_out = \"b\"\n```\nEach word was learnt from "
                  "other pictures, so the pair is composed from parts the model knows; less "
                  "reliably than a pair it saw many times.",
)


# ---------------------------------------------------------------------------- Q4

PROMPT = "a big red circle"


@functools.lru_cache(maxsize=1)
def _course_models():
    from mmlearn.vqgan import load_course_vqgan

    return dalle.load_course_dalle("cpu"), load_course_vqgan("cpu")


def _run(fn, model, text, temperature, top_k, seed) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    try:
        with torch.no_grad():
            tokens = fn(model, text, temperature, top_k, generator)
    except NotImplementedError:
        raise NotAttempted() from None
    except Exception as error:  # the learner's bug, reported as feedback
        raise Incorrect(f"sample_tokens(model, text, {temperature}, {top_k}, generator) raised "
                        f"{type(error).__name__}: {error}") from None
    tokens = torch.as_tensor(tokens)
    want = (len(text), model.config.image_length)
    if tuple(tokens.shape) != want:
        raise Incorrect(f"for {len(text)} prompts the result should have shape {want} (one "
                        f"row of image tokens per prompt), yours has {tuple(tokens.shape)}.")
    return tokens.long()


@torch.no_grad()
def _mean_log_probability(model, text: torch.Tensor, tokens: torch.Tensor) -> float:
    """How likely the model itself finds sampled tokens (mean log-probability per token)."""
    logits = model(text, tokens[:, :-1])[1]
    return float(logits.log_softmax(dim=-1).gather(-1, tokens[..., None]).mean())


def _check_sampler(fn) -> None:
    """Greedy at top_k=1; same seed, same tokens; temperature changes how adventurous the
    samples are; and the decoded pictures show the prompt's colour to the judge."""
    from mmlearn import judge

    if not callable(fn):
        raise Incorrect(f"expected a function, got a {type(fn).__name__}.")
    model, vqgan = _course_models()
    text = model.tokenizer([PROMPT]).repeat(8, 1)
    with one_cpu_thread():
        greedy = dalle.sample_image_tokens(model, text[:2], 1.0, 1)
        if not _run(fn, model, text[:2], 1.0, 1, 0).equal(greedy):
            raise Incorrect("with top_k=1 only the most likely token may be drawn at each "
                            "step, but your tokens differ from that.")
        first, again = (_run(fn, model, text, 0.7, 32, 1) for _ in range(2))
        if not first.equal(again):
            raise Incorrect("two runs with generators seeded the same gave different tokens: "
                            "draw with `torch.multinomial(..., generator=generator)`.")
        if first.equal(_run(fn, model, text, 0.7, 32, 2)):
            raise Incorrect("two different seeds gave the same tokens: is it drawing at "
                            "random (with the generator) at all?")
        calm = _mean_log_probability(model, text, _run(fn, model, text, 0.3, None, 3))
        wild = _mean_log_probability(model, text, _run(fn, model, text, 2.0, None, 3))
        if calm < wild + 1.0:
            raise Incorrect(f"the model finds your temperature-0.3 samples no likelier than "
                            f"your temperature-2 ones (mean log-probability per token "
                            f"{calm:.2f} vs {wild:.2f}): a small temperature should make the "
                            f"likely tokens win more often. Divide the logits by it.")
        verdicts = judge.judge_images(dalle.decode_tokens(vqgan, first))
    red = sum(v.colour == "red" for v in verdicts)
    if red < 6:
        raise Incorrect(f"for {PROMPT!r} the judge finds red in only {red} of 8 pictures: "
                        f"does every new token go back into the model before the next one?")


q4 = Question(
    name="q4",
    variable="sample_tokens",
    checker=_check_sampler,
    hint_text="Start like `dalle.sample_image_tokens`' docstring says: the text goes through "
              "`model.transform(model.embed_text(text))` once. Then, 64 times: the image head "
              "of the last position gives logits; divide by the temperature, apply your "
              "top-k filter, softmax, draw one token per row with `torch.multinomial` and "
              "the generator; feed the token back with `model.embed_image(token[:, None], "
              "start=i)` and the caches. Stack the tokens.",
    solution_text="```python\ndef sample_tokens(model, text, temperature, top_k, generator):\n"
                  "    hidden, caches = model.transform(model.embed_text(text))\n"
                  "    tokens = []\n"
                  "    for i in range(model.config.image_length):\n"
                  "        logits = model.image_head(hidden[:, -1]) / temperature\n"
                  "        if top_k is not None:\n"
                  "            logits = top_k_filter(logits, top_k)\n"
                  "        token = torch.multinomial(logits.softmax(dim=-1), 1, "
                  "generator=generator)[:, 0]\n"
                  "        tokens.append(token)\n"
                  "        hidden, caches = model.transform(model.embed_image(token[:, None], "
                  "start=i), caches)\n"
                  "    return torch.stack(tokens, dim=1)\n```\n"
                  "The last token needs no forward pass after it; `dalle.sample_image_tokens` "
                  "skips it.",
)
