"""Exercises of lesson 05: DALL-E's causal mask, and how it samples.

Q1 predicts, before the lesson measures it, how well the tiny DALL-E draws colour x shape
pairs it never saw (committed with a reason before the reveal); Q2 builds the causal
mask, Q3 writes top-k filtering, Q4 builds the sampling loop (temperature, top-k, the
same seed giving the same tokens). The lesson then puts the learner's mask into the
transformer and draws with the learner's filter and sampler.

Every build question names the library functions that already do its work
(``forbidden``) and makes its test inputs afresh at every check; the sampler runs on its
own copy of the course DALL-E, so an answer that changes the model spoils nothing for
the next check.
"""

import functools

import torch
import torch.nn as nn
import torch.nn.modules.transformer as torch_transformer

from mmlearn import dalle, shapes
from mmlearn.config import one_cpu_thread
from mmlearn.exercises.core import (
    Incorrect,
    Question,
    call_learner,
    choice_checker,
    compare,
    fresh_generator,
)

# ---------------------------------------------------------------------------- Q1

q1 = Question(
    name="q1",
    variable="prediction_held_out",
    checker=choice_checker("b", "abcd", reason=True, why_not={
        "a": "nothing makes a pair the model never saw easier than one it saw many times: "
             "the held-out pairs come out right a little less often.",
        "c": "the model saw every colour and every shape, only not these pairs, and it reads "
             "the caption word by word: most held-out samples still have the right shape.",
        "d": "the shape is not lost with the pair: 'triangle' was learnt from triangles of "
             "other colours, and most held-out samples still have the right shape."}),
    hint_text="What did the model see in training: the pair 'red triangle', or red things and "
              "triangles? And how does the caption reach the model: as one symbol for the "
              "pair, or word by word?",
    solution_text="```python\nprediction_held_out = \"b: each word was learnt from other "
                  "pictures\"\n```\nEach word was learnt from other pictures, so the pair is "
                  "composed from parts the model knows; less reliably than a pair it saw many "
                  "times.",
    predict=True,
    points=1,
)


# ---------------------------------------------------------------------------- Q2

def _mask_sizes(generator: torch.Generator) -> list[int]:
    """1, a small size to draw on paper, and one longer than the course DALL-E's sequence
    (so that no slice of a mask the notebook already holds can answer)."""
    small = int(torch.randint(2, 10, (), generator=generator))
    large = int(torch.randint(80, 161, (), generator=generator))
    return [1, small, large]


def _check_mask(fn) -> None:
    """Run the learner's causal_mask on fresh sizes and say what is wrong, in words."""
    masks = {}
    for n in _mask_sizes(fresh_generator()):
        mask = call_learner(fn, (n,), reference=dalle.causal_mask, case=f"causal_mask({n}): ")
        if not isinstance(mask, torch.Tensor):
            raise Incorrect(f"causal_mask({n}) returned a {type(mask).__name__}; return a "
                            f"torch tensor.")
        if mask.shape != (n, n):
            raise Incorrect(f"causal_mask({n}) has shape {tuple(mask.shape)}, not ({n}, {n}).")
        if mask.dtype != torch.bool:
            raise Incorrect(f"causal_mask({n}) holds {mask.dtype}; use True/False (torch.bool).")
        masks[n] = mask
    for n, mask in masks.items():  # n = 1 cannot tell a swapped mask from one missing itself
        if n > 1 and mask.equal(~dalle.causal_mask(n)):
            raise Incorrect(f"causal_mask({n}) has True and False swapped: here True means "
                            f"\"may attend\" (unlike the masks of nn.MultiheadAttention, where "
                            f"True means \"may not\"), so position i may look at j <= i.")
    for n, mask in masks.items():
        if mask.triu(1).any():
            raise Incorrect(f"in causal_mask({n}) some position may look at a *later* one "
                            f"(True above the diagonal): that is the future it must predict.")
        if not mask.equal(dalle.causal_mask(n)):
            raise Incorrect(f"in causal_mask({n}) some position may not look at itself or at "
                            f"an earlier position; it should see all of them.")


_TORCH_MASKS = tuple(f for f in (nn.Transformer.generate_square_subsequent_mask,
                                 getattr(torch_transformer, "_generate_square_subsequent_mask",
                                         None)) if f is not None)

q2 = Question(
    name="q2",
    variable="causal_mask",
    checker=_check_mask,
    hint_text="Return a bool tensor of shape [n, n] where `mask[i, j]` is True when position i "
              "may attend to position j: itself and everything before it (j <= i). Draw it "
              "for n = 3 on paper first: which triangle of the matrix is True?",
    solution_text="```python\ndef causal_mask(n):\n"
                  "    return torch.ones(n, n, dtype=torch.bool).tril()\n```",
    forbidden=(dalle.causal_mask, *_TORCH_MASKS),
    points=3,
)


# ---------------------------------------------------------------------------- Q3

def _top_k_cases(generator: torch.Generator) -> list[tuple[torch.Tensor, int]]:
    """Random logits [B, V] with a k for each: small enough to read, the model's 256 image
    codes with k = 1 (greedy), a middling k, and k = V (nothing to drop)."""
    def logits(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * 3

    def k_in(low: int, high: int) -> int:
        return int(torch.randint(low, high + 1, (), generator=generator))

    return [(logits(1, 6), k_in(2, 4)), (logits(3, 256), 1), (logits(8, 256), k_in(8, 128)),
            (logits(2, 10), 10)]


def _explain_top_k(got, logits: torch.Tensor, k: int, expected: torch.Tensor) -> None:
    """Incorrect, with what is wrong in words, for a plausible mistake (else nothing)."""
    if not isinstance(got, torch.Tensor) or got.shape != logits.shape:
        return  # compare() says what is wrong with the type or the shape
    got = got.detach().float()
    if got.isnan().any():
        raise Incorrect(f"for k = {k} your result holds NaN.")
    keep = expected.isfinite()                       # the k largest of each row
    kept = got.isfinite()
    if kept.all() and not keep.all():
        raise Incorrect(f"for k = {k} nothing became -inf: every logit outside the k largest "
                        f"must be set to -inf, so that softmax gives it probability 0 (a "
                        f"logit of 0 still gets e^0 = 1).")
    counts = kept.sum(dim=-1)
    if (counts != k).any():
        row = int((counts != k).nonzero()[0])
        raise Incorrect(f"for k = {k} row {row} keeps {int(counts[row])} logits (not -inf); "
                        f"it should keep exactly k of them.")
    if not kept.equal(keep):
        raise Incorrect(f"for k = {k} you keep k logits per row, but not the k *largest*.")
    if not torch.equal(got[keep], logits[keep]):
        raise Incorrect(f"for k = {k} the logits you keep changed their values; keep them as "
                        f"they are and change only the others.")
    if not (got[~keep] == float("-inf")).all():
        raise Incorrect(f"for k = {k} the logits you drop must be -inf, not "
                        f"{float(got[~keep][0]):g}.")


def _check_top_k(fn) -> None:
    """Compare with the library on fresh logits; say which mistake it is, in words."""
    for logits, k in _top_k_cases(fresh_generator()):
        expected = dalle.top_k_filter(logits.clone(), k)
        given = logits.clone()  # the learner's own copy, looked at again afterwards
        got = call_learner(fn, (given, k), copy=False, reference=dalle.top_k_filter,
                           case=f"for logits of shape {list(logits.shape)} and k = {k} ")
        if got is None:
            raise Incorrect("your function returned None: did you forget `return`?")
        if not torch.equal(given, logits):
            raise Incorrect(f"for k = {k} your function changed the logits it was given; "
                            f"return a new tensor and leave `logits` as it was (the sampler "
                            f"may still need it).")
        _explain_top_k(got, logits, k, expected)
        try:
            compare(got, expected)
        except Incorrect as wrong:
            raise Incorrect(f"for logits of shape {list(logits.shape)} and k = {k}: "
                            f"{wrong}") from None


q3 = Question(
    name="q3",
    variable="top_k_filter",
    checker=_check_top_k,
    hint_text="For each row, find the k-th largest logit (torch can give you the k largest "
              "values of each row). Every logit smaller than it must get probability 0 after "
              "the softmax: which logit value does that? Leave the input tensor unchanged.",
    solution_text="```python\ndef top_k_filter(logits, k):\n"
                  "    kth_largest = logits.topk(k, dim=-1).values[..., -1:]\n"
                  "    return logits.masked_fill(logits < kth_largest, float('-inf'))\n```",
    forbidden=(dalle.top_k_filter,),
    points=3,
)


# ---------------------------------------------------------------------------- Q4

PROMPT = "a big red circle"


@functools.lru_cache(maxsize=1)
def _course_models():
    from mmlearn.vqgan import load_course_vqgan

    return dalle.load_course_dalle("cpu"), load_course_vqgan("cpu")


def _without_gradients(fn):
    """``fn`` run under ``torch.no_grad()`` in the thread that calls it (grad mode is per
    thread, and the learner's function runs in a thread of its own)."""
    @functools.wraps(fn)
    def run(*args):
        with torch.no_grad():
            return fn(*args)
    return run


def _run(fn, model, text, temperature, top_k, seed) -> torch.Tensor:
    """The learner's tokens for ``text``, from a copy of ``model``, as a [B, 64] tensor."""
    generator = torch.Generator().manual_seed(seed)
    tokens = call_learner(_without_gradients(fn), (model, text, temperature, top_k, generator),
                          time_limit=10, reference=dalle.sample_image_tokens,
                          case=f"with temperature {temperature} and top_k {top_k}, ")
    try:
        tokens = torch.as_tensor(tokens)
    except Exception:
        raise Incorrect(f"return the image tokens as a tensor, not a "
                        f"{type(tokens).__name__}.") from None
    want = (len(text), model.config.image_length)
    if tuple(tokens.shape) != want:
        raise Incorrect(f"for {len(text)} prompts the result should have shape {want} (one "
                        f"row of image tokens per prompt), yours has {tuple(tokens.shape)}.")
    return tokens.long()


def _random_prompts(generator: torch.Generator, n: int) -> list[str]:
    picks = torch.randint(len(shapes.CLASSES), (n,), generator=generator).tolist()
    return [shapes.with_articles(f"a {shapes.CLASSES[i]}") for i in picks]


@torch.no_grad()
def _mean_log_probability(model, text: torch.Tensor, tokens: torch.Tensor) -> float:
    """How likely the model itself finds sampled tokens (mean log-probability per token)."""
    logits = model(text, tokens[:, :-1])[1]
    return float(logits.log_softmax(dim=-1).gather(-1, tokens[..., None]).mean())


def _check_sampler(fn) -> None:
    """Greedy at top_k=1 (on fresh prompts); same seed, same tokens; temperature changes how
    adventurous the samples are; and the decoded pictures show the prompt's colour to the
    judge. The learner's function gets a fresh copy of the model at every call; the
    checker judges with its own."""
    from mmlearn import judge

    if not callable(fn):
        raise Incorrect(f"expected a function, got a {type(fn).__name__}.")
    model, vqgan = _course_models()
    generator = fresh_generator()
    seeds = torch.randint(2**31, (3,), generator=generator).tolist()
    text = model.tokenizer([PROMPT]).repeat(8, 1)
    with one_cpu_thread():
        others = model.tokenizer(_random_prompts(generator, 2))
        greedy = dalle.sample_image_tokens(model, others, 1.0, 1)
        if not _run(fn, model, others, 1.0, 1, seeds[0]).equal(greedy):
            raise Incorrect("with top_k=1 only the most likely token may be drawn at each "
                            "step, but your tokens differ from that: either the filter does "
                            "not keep only the largest logit, or each new token does not go "
                            "back into the model before the next one is drawn.")
        first, again = (_run(fn, model, text, 0.7, 32, seeds[1]) for _ in range(2))
        if not first.equal(again):
            raise Incorrect("two runs with generators seeded the same gave different tokens: "
                            "draw with `torch.multinomial(..., generator=generator)`.")
        if first.equal(_run(fn, model, text, 0.7, 32, seeds[2])):
            raise Incorrect("two different seeds gave the same tokens: is it drawing at "
                            "random (with the generator) at all?")
        calm = _mean_log_probability(model, text, _run(fn, model, text, 0.3, None, seeds[2]))
        wild = _mean_log_probability(model, text, _run(fn, model, text, 2.0, None, seeds[2]))
        if calm < wild + 1.0:
            raise Incorrect(f"the model finds your temperature-0.3 samples no likelier than "
                            f"your temperature-2 ones (mean log-probability per token "
                            f"{calm:.2f} vs {wild:.2f}): a small temperature should make the "
                            f"likely tokens win more often. Divide the logits by it.")
        verdicts = judge.judge_images(dalle.decode_tokens(vqgan, first))
    red = sum(v.color == "red" for v in verdicts)
    if red < 6:
        raise Incorrect(f"for {PROMPT!r} the judge finds red in only {red} of 8 pictures: "
                        f"does every new token go back into the model before the next one?")


q4 = Question(
    name="q4",
    variable="sample_tokens",
    checker=_check_sampler,
    hint_text="The model reads the caption once, then writes 64 tokens one at a time. After "
              "reading the caption, the output at which position predicts the first image "
              "token? Once a token is drawn, what must the model read before it can predict "
              "the next one, and what do the caches that `model.transform` returns save it "
              "from reading again? Where do the temperature and `keep_top_k(logits, top_k)` "
              "act: on the logits or on the probabilities? And which argument of "
              "`torch.multinomial` makes the same seed give the same tokens?",
    solution_text="```python\ndef sample_tokens(model, text, temperature, top_k, generator):\n"
                  "    hidden, caches = model.transform(model.embed_text(text))\n"
                  "    tokens = []\n"
                  "    for i in range(model.config.image_length):\n"
                  "        logits = model.image_head(hidden[:, -1]) / temperature\n"
                  "        if top_k is not None:\n"
                  "            logits = keep_top_k(logits, top_k)\n"
                  "        token = torch.multinomial(logits.softmax(dim=-1), 1, "
                  "generator=generator)[:, 0]\n"
                  "        tokens.append(token)\n"
                  "        hidden, caches = model.transform(model.embed_image(token[:, None], "
                  "start=i), caches)\n"
                  "    return torch.stack(tokens, dim=1)\n```\n"
                  "The last token needs no forward pass after it; the library's sampler "
                  "skips it.",
    forbidden=(dalle.sample_image_tokens, dalle.sample, dalle.sample_many, dalle.pick_tokens),
    points=3,
)
