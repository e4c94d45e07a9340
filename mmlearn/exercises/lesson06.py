"""Exercises of lesson 06: the learner writes diffusion's pieces, the lesson runs on them.

Q1 (build, 3 points) ``add_noise(x0, t, noise, schedule)``: the forward jump
q(x_t | x_0), with which the lesson noises a picture.
Q2 (build, 3) ``simple_loss(model, x0, cond, schedule, generator)``: DDPM's L_simple (a
uniform time, the mean squared error of the noise guess), checked by value and by
gradients against ``diffusion.diffusion_loss`` with the same draws, on small random
denoisers (each call gets its own copy of the model).
Q3 (build, 3) ``ddim_step(x_t, eps, t, t_prev, schedule)``: one deterministic DDIM step
(eta = 0).
Q4 (build, 3) ``ddpm_step(x_t, eps, t, t_prev, schedule, noise)``: one random DDPM step,
the fresh noise handed in so that it can be checked.
Q5 (build, 3) ``guide(eps_uncond, eps_cond, scale)``: classifier-free guidance.
Q6 (predict, 1) what the decoder draws at guidance scale 0: four choices and a reason,
recorded before the cell that shows it.

The questions are numbered in the order the notebook asks them. The lesson uses the
learner's functions where it can (``add_noise`` for its noising figures, ``simple_loss``
on the shipped decoder, ``ddim_step`` and ``ddpm_step`` for one reverse step and in its
hand-written sampling loop, ``guide`` in that loop), and the library's when one does not
pass yet (``qN.passed()``), saying so.

Every build is checked on random cases drawn afresh at each check, against
``mmlearn.diffusion``; the library function that is the answer, and this module's own
reference, are refused while the learner's function runs (``forbidden``). Q3 also
refuses ``diffusion.predict_x0`` and ``diffusion.add_noise``: with both, a DDIM step is
``add_noise(predict_x0(...), t_prev, eps)`` and nothing is left to write. Q4 allows
``predict_x0``: a DDPM step's work is the posterior's mean and variance. Plausible
mistakes (a missing square root, ``alpha_bar[-1]`` or ``alpha_bar[0]`` for the clean
picture, one test for a whole batch whose samples have their own times, one step's beta
for a jump...) get a message of their own. Hints give the idea; code is in the solutions.
"""

import copy
import functools

import torch
import torch.nn.functional as F

from mmlearn import diffusion, unclip
from mmlearn.exercises.core import (
    CHECK_TIME_LIMIT,
    TIME_LIMIT,
    Incorrect,
    NotAttempted,
    Question,
    _short,
    behaviour_checker,
    call_learner,
    choice_checker,
    compare,
    fresh,
    fresh_generator,
)

RTOL, ATOL = 1e-4, 1e-5


def _abar(schedule: diffusion.Schedule, t: torch.Tensor) -> torch.Tensor:
    """alpha_bar at times ``t`` as float32 [B, 1, 1, 1] (for the mistakes below)."""
    return schedule.alpha_bar[t].float().view(-1, 1, 1, 1)


def _abar_before(schedule: diffusion.Schedule, t_prev: torch.Tensor) -> torch.Tensor:
    """alpha_bar at ``t_prev``, 1 where t_prev = -1 (a clean picture)."""
    padded = torch.cat([torch.ones(1, dtype=schedule.alpha_bar.dtype), schedule.alpha_bar])
    return padded[t_prev + 1].float().view(-1, 1, 1, 1)


def _checked_against(reference, make_cases, mistakes=(), n_cases: int = 4):
    """A checker: the learner's function against ``reference`` on fresh random cases.

    ``make_cases(generator)`` draws the cases (new numbers at every check).
    ``mistakes`` are (wrong function, message) pairs: when the answer is wrong and
    matches one of them, the learner reads that message instead of "values are off".
    """
    def check(fn) -> None:
        if not callable(fn):
            raise Incorrect(f"expected a function, got a {type(fn).__name__}.")
        cases = make_cases(fresh_generator())
        for i, args in enumerate(cases, start=1):
            expected = reference(*fresh(args))
            got = call_learner(fn, args, reference=reference, case=f"on test case {i} ")
            if got is None:
                raise Incorrect(f"on test case {i} your function returned None: did you "
                                f"forget `return`?")
            try:
                compare(got, expected, rtol=RTOL, atol=ATOL)
            except NotAttempted:
                raise Incorrect(f"on test case {i} your function returned {_short(got)}.") \
                    from None
            except Incorrect as wrong:
                for mistake, message in mistakes:
                    try:
                        compare(got, mistake(*fresh(args)), rtol=RTOL, atol=ATOL)
                    except Incorrect:
                        continue
                    raise Incorrect(f"on test case {i}: {message}") from None
                raise Incorrect(f"on test case {i} (of {len(cases)}): {wrong}") from None
    check.time_limit = TIME_LIMIT * n_cases + CHECK_TIME_LIMIT
    return check


def _integer(generator: torch.Generator, low: int, high: int) -> int:
    """A whole number from low to high - 1."""
    return int(torch.randint(low, high, (1,), generator=generator))


def _picture_shape(generator: torch.Generator) -> tuple[int, int, int, int]:
    side = (4, 8)[_integer(generator, 0, 2)]
    return (_integer(generator, 2, 6), (1, 3, 16)[_integer(generator, 0, 3)], side, side)


# ---------------------------------------------------------------------------- Q1


def _forward_cases(generator: torch.Generator) -> list[tuple]:
    """Batches of pictures and noise at random times, the first and last time included."""
    cases = []
    for i in range(4):
        steps = _integer(generator, 20, 301)
        schedule = diffusion.cosine_schedule(steps)
        shape = _picture_shape(generator)
        t = torch.randint(steps, (shape[0],), generator=generator)
        if i == 0:
            t[0] = 0
        if i == 1:
            t[-1] = steps - 1
        cases.append((torch.randn(shape, generator=generator), t,
                      torch.randn(shape, generator=generator), schedule))
    return cases


FORWARD_MISTAKES = (
    (lambda x0, t, noise, s: _abar(s, t) * x0 + (1 - _abar(s, t)) * noise,
     "the weights are square roots: alpha_bar is the share of the signal's *variance* that "
     "is left, and a picture's amplitude scales with the square root of its variance."),
    (lambda x0, t, noise, s: (1 - _abar(s, t)).sqrt() * x0 + _abar(s, t).sqrt() * noise,
     "the picture and the noise have swapped weights: at small t (alpha_bar near 1) x_t "
     "must be almost the clean picture."),
    (lambda x0, t, noise, s: (1 - s.betas[t].float().view(-1, 1, 1, 1)).sqrt() * x0
     + s.betas[t].float().view(-1, 1, 1, 1).sqrt() * noise,
     "that is one small step (from x_{t-1}, with beta_t), not the jump from x_0: the jump "
     "uses alpha_bar_t, the product of all the steps' (1 - beta)."),
    (lambda x0, t, noise, s: diffusion.add_noise(x0, (t - 1).clamp(min=0), noise, s),
     "your times are off by one: here times run from 0 to T - 1 and are the indices of "
     "`schedule.alpha_bar` as they are."),
    (lambda x0, t, noise, s: diffusion.add_noise(x0, t[:1].expand_as(t), noise, s),
     "every sample of the batch has its own time: look alpha_bar up at each sample's t."),
)

q1 = Question(
    name="q1",
    variable="add_noise",
    checker=_checked_against(diffusion.add_noise, _forward_cases, FORWARD_MISTAKES),
    hint_text="Look up alpha_bar at each sample's time (`schedule.alpha_bar[t]`: B numbers, "
              "float64). Make them float32 and give them the shape [B, 1, 1, 1], so that "
              "each number multiplies its whole picture; then mix x0 and the noise with the "
              "weights of the formula.",
    solution_text="```python\ndef add_noise(x0, t, noise, schedule):\n"
                  "    abar = schedule.alpha_bar[t].float().view(-1, 1, 1, 1)\n"
                  "    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise\n```",
    forbidden=(diffusion.add_noise,),
    points=3,
)


# ---------------------------------------------------------------------------- Q2

LOSS_CHANNELS, LOSS_COND = 4, 8


def _random_unet(seed: int) -> diffusion.TinyUNet:
    """A tiny denoiser with random weights, its last layer too (the course starts it at 0,
    which would make every input give the same guess, and every mistake the same loss)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = diffusion.TinyUNet(LOSS_CHANNELS, (8, 16), cond_dim=LOSS_COND, emb_dim=16)
        with torch.no_grad():
            unet.head[-1].weight.normal_(0, 0.1)
            unet.head[-1].bias.normal_(0, 0.1)
            unet.null_condition.normal_()
    return unet


def _loss_cases(generator: torch.Generator) -> list[dict]:
    """Random tiny models, batches, conditions, schedules and seeds for the draws."""
    cases = []
    for _ in range(2):
        batch = _integer(generator, 3, 7)
        cases.append({
            "model": _random_unet(_integer(generator, 0, 2**31)),
            "x0": torch.randn(batch, LOSS_CHANNELS, 8, 8, generator=generator),
            "cond": F.normalize(torch.randn(batch, LOSS_COND, generator=generator), dim=-1),
            "schedule": diffusion.cosine_schedule(_integer(generator, 50, 301)),
            "seed": _integer(generator, 0, 2**31)})
    return cases


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _library_loss(model, x0, cond, schedule, generator) -> torch.Tensor:
    """The reference: L_simple with the draws from ``generator``, no condition dropped."""
    return diffusion.diffusion_loss(model, x0, cond, schedule, generator=generator)


def _loss_variants(case: dict) -> list[tuple[torch.Tensor, str]]:
    """What plausible mistakes give on this case, each with its message."""
    model, x0, cond, schedule = case["model"], case["x0"], case["cond"], case["schedule"]
    steps, batch = schedule.steps, len(x0)

    def drawn(noise_first=False, low=0, high=steps):
        g = _seeded(case["seed"])
        if noise_first:
            noise = torch.randn(x0.shape, generator=g)
            return torch.randint(low, high, (batch,), generator=g), noise
        t = torch.randint(low, high, (batch,), generator=g)
        return t, torch.randn(x0.shape, generator=g)

    t, noise = drawn()
    x_t = diffusion.add_noise(x0, t, noise, schedule)
    variants = []
    with torch.no_grad():
        guess = model(x_t, t, cond)
        variants += [
            (F.mse_loss(guess, x0), "the target is the noise that was added (epsilon), not "
                                    "the clean x0."),
            (((guess - noise) ** 2).sum(), "take the mean over all the numbers, not the sum."),
            (((guess - noise) ** 2).flatten(1).sum(1).mean(),
             "you summed each example's squared errors and averaged over the batch: take the "
             "mean over all the numbers instead (every entry of every example), the mean "
             "squared error."),
            (F.mse_loss(model(x0, t, cond), noise), "the model must see the noisy x_t, made "
                                                    "from x0 with the forward jump, not x0."),
            (F.mse_loss(model(x_t, t, None), noise), "give the model the condition `cond`: "
                                                     "this is the conditional model's loss."),
        ]
        t_late, noise_first = drawn(noise_first=True)
        variants.append((F.mse_loss(model(diffusion.add_noise(x0, t_late, noise_first, schedule),
                                          t_late, cond), noise_first),
                         "draw the times first and then the noise, both from `generator` "
                         "(the order `diffusion.diffusion_loss` uses), so that the same "
                         "seed gives the same loss."))
        for low, high in ((1, steps), (0, steps - 1)):
            t_off, noise_off = drawn(low=low, high=high)
            variants.append((F.mse_loss(model(diffusion.add_noise(x0, t_off, noise_off,
                                                                  schedule), t_off, cond),
                                        noise_off),
                             "times are uniform over 0, 1, ..., T - 1 (all T of them): "
                             "`torch.randint(schedule.steps, ...)`."))
    return variants


def _as_loss(value, i: int) -> torch.Tensor:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise Incorrect(f"on test case {i} your function returned a plain number: return the "
                        f"loss as a tensor (no `.item()`), so that `backward()` can reach "
                        f"the model's weights.")
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise Incorrect(f"on test case {i} your function returned {_short(value)}; return "
                        f"the loss, a tensor holding one number.")
    return value


def _gradients(model) -> list:
    return [p.grad for p in model.parameters()]


def _learner_loss(run, case: dict, i: int) -> torch.Tensor:
    """The learner's loss on ``case``, with its own copies of the model and the data."""
    return _as_loss(run(copy.deepcopy(case["model"]), case["x0"].clone(), case["cond"].clone(),
                        copy.deepcopy(case["schedule"]), _seeded(case["seed"])), i)


def _check_loss(run) -> None:
    cases = _loss_cases(fresh_generator())
    for i, case in enumerate(cases, start=1):
        reference = copy.deepcopy(case["model"])
        expected = _library_loss(reference, case["x0"], case["cond"], case["schedule"],
                                 _seeded(case["seed"]))
        expected.backward()
        model = copy.deepcopy(case["model"])  # the learner's own copy
        args = (model, case["x0"].clone(), case["cond"].clone(), copy.deepcopy(case["schedule"]),
                _seeded(case["seed"]))
        got = _as_loss(run(*args), i)
        gap = _gap(got.item(), expected.item())
        if gap > 1e-4 or (gap > 1e-6 and _closest_mistake(case, got.item())[0] < gap):
            _explain_wrong_loss(run, cases, i, got.item(), near_right=gap <= 1e-4)
        if not got.requires_grad:
            raise Incorrect(f"on test case {i} the loss has the right value but carries no "
                            f"gradient: was it computed under `torch.no_grad()`, or detached?")
        if any(g is not None for g in _gradients(model)):
            raise Incorrect("your function already called `backward()`: return the loss and "
                            "leave the backward pass to the training loop.")
        got.backward()
        for (name, p), want in zip(model.named_parameters(), _gradients(reference)):
            if want is None:  # a weight the loss does not use (the null condition)
                continue
            if p.grad is None or not torch.allclose(p.grad, want, rtol=1e-3, atol=1e-6):
                if gap > 1e-6:  # near the right value by chance (unseeded draws, say)
                    _refuse_unseeded(run, case, i, got.item())
                    raise _not_the_loss(i, got.item())
                raise Incorrect(f"on test case {i} the loss has the right value, but the "
                                f"gradient of the model's `{name}` is not the one of the "
                                f"mean squared error: does the loss flow through the very "
                                f"model you were given?")


CHECK_Q1_FIRST = ("Your loss builds on your `add_noise`: if q1 does not pass yet, make it "
                  "pass first.")


def _gap(got: float, want: float) -> float:
    return abs(got - want) / max(1.0, abs(want))


def _closest_mistake(case: dict, got: float) -> tuple[float, str]:
    """The plausible mistake whose loss is nearest to ``got``: (its gap, its message).

    On small random models all these losses lie near 1, and a mistake that changes little
    (no condition, times from 1) can land within the tolerance of the right loss or of
    another mistake: the nearest one is the one that was made."""
    return min(((_gap(got, value.item()), message) for value, message in _loss_variants(case)),
               key=lambda pair: pair[0])


def _made_on_every_case(run, cases: list[dict], message: str) -> bool:
    """Whether the learner's loss equals the mistake named ``message`` on every case.

    One case alone can mislead: all these losses lie near 1, so an unrelated error (a wrong
    forward jump) sometimes lands within the tolerance of some named mistake by chance."""
    for i, case in enumerate(cases, start=1):
        got = _learner_loss(run, case, i).item()
        if not any(text == message and _gap(got, value.item()) <= 1e-4
                   for value, text in _loss_variants(case)):
            return False
    return True


def _explain_wrong_loss(run, cases: list[dict], i: int, got: float, near_right: bool) -> None:
    """Incorrect, with the message of the mistake that gives ``got`` if there is one.

    ``near_right``: ``got`` is within the tolerance of the right loss too; unless a mistake
    fits every case, the answer is taken as right (nothing is raised)."""
    case = cases[i - 1]
    _refuse_unseeded(run, case, i, got)
    gap, message = _closest_mistake(case, got)
    if gap <= 1e-4 and _made_on_every_case(run, cases, message):
        raise Incorrect(f"on test case {i}: {message}")
    if near_right:
        return
    raise _not_the_loss(i, got)


def _refuse_unseeded(run, case: dict, i: int, got: float) -> None:
    """Incorrect if a second call with the same seed gives another loss: the draws ignore
    ``generator``. Asked before any other verdict on a wrong loss, because unseeded draws
    can land near the right loss, or near a named mistake, by chance."""
    again = _learner_loss(run, case, i)
    if abs(again.item() - got) > 1e-6 * max(1.0, abs(got)):
        raise Incorrect(f"on test case {i} two calls with the same seed gave different "
                        f"losses: draw t and the noise from `generator` (pass "
                        f"`generator=generator` to torch.randint and torch.randn).")


def _not_the_loss(i: int, got: float) -> Incorrect:
    return Incorrect(f"on test case {i} your loss is {got:.5f}, not the mean squared error of "
                     f"the noise guess for the times and noise drawn from `generator`. "
                     f"{CHECK_Q1_FIRST}")


def _writes_its_placeholder(fn) -> bool:
    """Whether the function's own body raises NotImplementedError (the notebook's
    placeholder), as opposed to something it calls."""
    return "NotImplementedError" in getattr(getattr(fn, "__code__", None), "co_names", ())


def _loss_checker(fn) -> None:
    """``_check_loss`` on the learner's function; a placeholder *called by* the loss (the
    learner's ``add_noise``, not answered yet) is named as such, not as "not attempted"."""
    if not callable(fn):
        raise Incorrect(f"expected a function, got a {type(fn).__name__}.")

    def run(*args):
        try:
            return call_learner(fn, args, time_limit=20.0, copy=False)
        except NotAttempted:
            if _writes_its_placeholder(fn):
                raise
            raise Incorrect("a function your loss calls raised NotImplementedError: it is "
                            "still a placeholder. Your loss builds on your `add_noise`: answer "
                            "q1 first.") from None
    _check_loss(run)


_loss_checker.time_limit = 60.0


q2 = Question(
    name="q2",
    variable="simple_loss",
    checker=_loss_checker,
    hint_text="Follow the formula from the inside out. Draw a time for every example, then "
              "the noise, both from `generator` (times first). Noise the clean pictures with "
              "your forward jump (make q1 pass first). Ask the model for its guess of the "
              "noise, given what it would see in training: the noisy pictures, their times "
              "and the condition. The loss compares that guess with the noise you drew, "
              "averaged over all the numbers. The solution shows the code.",
    solution_text="```python\ndef simple_loss(model, x0, cond, schedule, generator):\n"
                  "    t = torch.randint(schedule.steps, (len(x0),), generator=generator)\n"
                  "    noise = torch.randn(x0.shape, generator=generator)\n"
                  "    guess = model(add_noise(x0, t, noise, schedule), t, cond)\n"
                  "    return ((guess - noise) ** 2).mean()\n```",
    forbidden=(diffusion.diffusion_loss, unclip.decoder_loss, unclip.train_decoder,
               _library_loss),
    points=3,
    time_limit=60.0,
)


# ---------------------------------------------------------------------------- Q3 and Q4


def _step_cases(generator: torch.Generator, with_noise: bool = False) -> list[tuple]:
    """Reverse steps of three kinds: to the next time, over many times (from T - 1 too),
    and to the clean picture (t_prev = -1) for some of the samples."""
    cases = []
    for kind in ("next", "skip", "last"):
        steps = _integer(generator, 30, 301)
        schedule = diffusion.cosine_schedule(steps)
        shape = _picture_shape(generator)
        batch = shape[0]
        t = torch.randint(1, steps, (batch,), generator=generator)
        if kind == "next":
            t_prev = t - 1
        elif kind == "skip":
            t[0] = steps - 1
            t_prev = (torch.rand(batch, generator=generator) * t).long().clamp(max=t - 2)
            t_prev = t_prev.clamp(min=0)
        else:
            t_prev = (t - 1 - torch.randint(0, 20, (batch,), generator=generator)).clamp(min=0)
            t_prev[0] = -1
        args = (torch.randn(shape, generator=generator), torch.randn(shape, generator=generator),
                t, t_prev, schedule)
        cases.append(args + ((torch.randn(shape, generator=generator),) if with_noise else ()))
    return cases


def _wraps_around(t_prev: torch.Tensor, schedule: diffusion.Schedule) -> torch.Tensor:
    """The times a step would use if t_prev = -1 were looked up as alpha_bar[-1]."""
    return torch.where(t_prev < 0, schedule.steps - 1, t_prev)


LAST_STEP = ("for the samples with t_prev = -1 you used `alpha_bar[-1]`, which in Python is "
             "the *last* entry (almost pure noise). t_prev = -1 means the clean picture: "
             "alpha_bar = 1 there. Each sample has its own t_prev, and in this batch only "
             "some are -1: a test for the whole batch, such as `if (t_prev < 0).all():`, "
             "does not see them.")
CLAMPED = ("for the samples with t_prev = -1 you used `alpha_bar[0]` (as `t_prev.clamp(min=0)` "
           "would): time 0 is already a little noisy (alpha_bar_0 < 1). t_prev = -1 is the "
           "clean picture, one step before time 0, where alpha_bar is exactly 1.")
WHOLE_BATCH = ("the samples whose t_prev is -1 end at the clean picture, the others take an "
               "ordinary step. Each sample has its own t and t_prev, and in this batch only "
               "some are -1: one test for the whole batch, such as `if (t_prev < 0).any():`, "
               "treats them all alike.")


def _if_any_last(last, step):
    """A step that decides for the whole batch: ``last`` for every sample if any t_prev is
    -1, else ``step`` (the mistake of a mixed batch)."""
    def decided_for_all(x_t, eps, t, t_prev, s, *noise):
        if (t_prev < 0).any():
            return last(x_t, eps, t, t_prev, s, *noise)
        return step(x_t, eps, t, t_prev, s, *noise)
    return decided_for_all


def _x0_hat(x_t, eps, t, t_prev, s, *noise):
    return diffusion.predict_x0(x_t, eps, t, s)


def _ddim_x0_reused(x_t, eps, t, t_prev, s):
    return _abar_before(s, t_prev).sqrt() * x_t + (1 - _abar_before(s, t_prev)).sqrt() * eps


DDIM_MISTAKES = (
    (lambda x_t, eps, t, t_prev, s: diffusion.ddim_step(x_t, eps, t, _wraps_around(t_prev, s),
                                                        s), LAST_STEP),
    (lambda x_t, eps, t, t_prev, s: diffusion.ddim_step(x_t, eps, t, t_prev.clamp(min=0), s),
     CLAMPED),
    (_if_any_last(_x0_hat, diffusion.ddim_step), WHOLE_BATCH),
    (_ddim_x0_reused, "re-noise the *guess of the clean picture* x0_hat, not x_t: first "
                      "undo the forward jump with the noise guess."),
    (lambda x_t, eps, t, t_prev, s: diffusion.predict_x0(x_t, eps, t, s),
     "that is the guess of the clean picture; the step then puts the same noise guess back "
     "at the earlier time's level."),
    (lambda x_t, eps, t, t_prev, s: diffusion.ddim_step(x_t, eps, t_prev.clamp(min=0), t, s),
     "t and t_prev are swapped: x0_hat comes from alpha_bar at t, the re-noising uses "
     "alpha_bar at t_prev."),
)

q3 = Question(
    name="q3",
    variable="ddim_step",
    checker=_checked_against(diffusion.ddim_step, _step_cases, DDIM_MISTAKES, n_cases=3),
    hint_text="Two moves. Undo the forward jump: from x_t and the noise guess, at alpha_bar "
              "of time t, guess the clean picture x0_hat. Then make the forward jump again, "
              "from x0_hat to the earlier time, with the same noise guess. Work per sample: "
              "some samples' earlier time is -1, the clean picture, where alpha_bar is 1 "
              "(not an entry of `schedule.alpha_bar`); find a lookup that gives 1 there and "
              "the entry at t_prev elsewhere, for the whole batch at once. The solution "
              "shows the code.",
    solution_text="```python\ndef ddim_step(x_t, eps, t, t_prev, schedule):\n"
                  "    abar = schedule.alpha_bar[t].float().view(-1, 1, 1, 1)\n"
                  "    padded = torch.cat([torch.ones(1, dtype=schedule.alpha_bar.dtype),\n"
                  "                        schedule.alpha_bar])\n"
                  "    abar_prev = padded[t_prev + 1].float().view(-1, 1, 1, 1)\n"
                  "    x0_hat = (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()\n"
                  "    return abar_prev.sqrt() * x0_hat + (1 - abar_prev).sqrt() * eps\n```",
    forbidden=(diffusion.ddim_step, diffusion.predict_x0, diffusion.add_noise,
               diffusion.sample),
    points=3,
)


def _ddpm_variant(x_t, eps, t, t_prev, s, noise, spread: str = "posterior std",
                  one_step_beta: bool = False):
    """A DDPM step, right with the defaults; the options make the mistakes below."""
    abar, abar_prev = _abar(s, t), _abar_before(s, t_prev)
    beta = s.betas[t].float().view(-1, 1, 1, 1) if one_step_beta else 1 - abar / abar_prev
    x0 = diffusion.predict_x0(x_t, eps, t, s)
    mean = (abar_prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - abar_prev) * x_t) / (1 - abar)
    variance = beta * (1 - abar_prev) / (1 - abar)
    scale = {"posterior std": variance.sqrt(), "posterior variance": variance,
             "beta": beta.sqrt()}[spread]
    return torch.where((t_prev < 0).view(-1, 1, 1, 1), mean, mean + scale * noise)


def _posterior_mean(x_t, eps, t, t_prev, s, noise):
    """A DDPM step without its noise: the posterior's mean."""
    return diffusion.ddpm_step(x_t, eps, t, t_prev, s, torch.zeros_like(noise))


DDPM_MISTAKES = (
    (lambda x_t, eps, t, t_prev, s, noise: diffusion.ddpm_step(
        x_t, eps, t, _wraps_around(t_prev, s), s, noise), LAST_STEP),
    (lambda x_t, eps, t, t_prev, s, noise: diffusion.ddpm_step(
        x_t, eps, t, t_prev.clamp(min=0), s, noise), CLAMPED),
    (_if_any_last(_x0_hat, diffusion.ddpm_step), WHOLE_BATCH),
    (_if_any_last(_posterior_mean, diffusion.ddpm_step), WHOLE_BATCH),
    (functools.partial(_ddpm_variant, spread="posterior variance"),
     "the noise is scaled by the standard deviation, the square root of the variance."),
    (functools.partial(_ddpm_variant, spread="beta"),
     "the variance is the posterior's, beta (1 - alpha_bar_prev) / (1 - alpha_bar_t), not "
     "beta itself."),
    (functools.partial(_ddpm_variant, one_step_beta=True),
     "this step may skip times: use alpha = alpha_bar_t / alpha_bar_prev and beta = 1 - alpha "
     "for the whole jump, not `schedule.betas[t]` of one step."),
    (lambda x_t, eps, t, t_prev, s, noise: diffusion.ddim_step(x_t, eps, t, t_prev, s),
     "that is the DDIM step: DDPM goes to the posterior's mean and adds fresh noise."),
)

q4 = Question(
    name="q4",
    variable="ddpm_step",
    checker=_checked_against(diffusion.ddpm_step,
                             lambda g: _step_cases(g, with_noise=True), DDPM_MISTAKES, n_cases=3),
    hint_text="Look up alpha_bar at t and at t_prev (1 for t_prev = -1, as in your "
              "`ddim_step`); alpha = alpha_bar_t / alpha_bar_prev and beta = 1 - alpha span "
              "the whole jump. Guess x0_hat (you may call `diffusion.predict_x0`), take the "
              "posterior's mean and variance from the formula, and add the square root of "
              "the variance times `noise` (at t_prev = -1 that variance is 0).",
    solution_text="```python\ndef ddpm_step(x_t, eps, t, t_prev, schedule, noise):\n"
                  "    abar = schedule.alpha_bar[t].float().view(-1, 1, 1, 1)\n"
                  "    padded = torch.cat([torch.ones(1, dtype=schedule.alpha_bar.dtype),\n"
                  "                        schedule.alpha_bar])\n"
                  "    abar_prev = padded[t_prev + 1].float().view(-1, 1, 1, 1)\n"
                  "    alpha = abar / abar_prev\n"
                  "    beta = 1 - alpha\n"
                  "    x0_hat = (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()\n"
                  "    mean = (abar_prev.sqrt() * beta * x0_hat\n"
                  "            + alpha.sqrt() * (1 - abar_prev) * x_t) / (1 - abar)\n"
                  "    variance = beta * (1 - abar_prev) / (1 - abar)  # 0 at t_prev = -1\n"
                  "    return mean + variance.sqrt() * noise\n```",
    forbidden=(diffusion.ddpm_step, diffusion.sample, _ddpm_variant),
    points=3,
)


# ---------------------------------------------------------------------------- Q5


def _guidance_cases(generator: torch.Generator) -> tuple:
    """Noise guesses of a random shape, and the scales 0, 1, one below 1 and two above."""
    shape = _picture_shape(generator)
    uncond, cond = torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)
    above = [round(1.5 + 6.5 * float(torch.rand(1, generator=generator)), 3) for _ in range(2)]
    below = round(0.1 + 0.8 * float(torch.rand(1, generator=generator)), 3)
    return uncond, cond, [0.0, 1.0, below, *above]


def _check_guidance(run) -> None:
    """The combination by value for several scales, and scale 0 = unconditional exactly."""
    uncond, cond, scales = _guidance_cases(fresh_generator())
    for scale in scales:
        got = run(uncond.clone(), cond.clone(), scale)
        if not isinstance(got, torch.Tensor):
            raise Incorrect(f"at scale {scale:g} your function returned {_short(got)}; return "
                            f"a tensor, the guided noise guess.")
        if got.shape != uncond.shape:
            raise Incorrect(f"the result should have the noise guesses' shape "
                            f"{tuple(uncond.shape)}, yours has {tuple(got.shape)}.")
        want = uncond + scale * (cond - uncond)
        if torch.allclose(got.float(), want, atol=ATOL):
            continue
        if torch.allclose(got.float(), (1 + scale) * cond - scale * uncond, atol=ATOL):
            raise Incorrect(f"at scale {scale:g} you used Ho & Salimans' (1 + w) eps_c - w "
                            f"eps_u with w = scale; their w is this course's scale - 1.")
        if scale == 0:
            raise Incorrect("at scale 0 the result must be the unconditional guess itself.")
        if scale == 1:
            raise Incorrect("at scale 1 the result must be the conditional guess itself.")
        raise Incorrect(f"at scale {scale:g} the result differs from the guided guess: start "
                        f"from the unconditional one and move `scale` times the difference "
                        f"towards the conditional one.")


q5 = Question(
    name="q5",
    variable="guide",
    checker=behaviour_checker(_check_guidance),
    hint_text="Start at the unconditional guess and step `scale` times the difference "
              "(conditional minus unconditional) away from it.",
    solution_text="```python\ndef guide(eps_uncond, eps_cond, scale):\n"
                  "    return eps_uncond + scale * (eps_cond - eps_uncond)\n```",
    forbidden=(diffusion.guided_noise,),
    points=3,
)


# ---------------------------------------------------------------------------- Q6

q6 = Question(
    name="q6",
    variable="prediction_scale_zero",
    checker=choice_checker("b", "abcd", reason=True, why_not={
        "a": "at scale 0 the formula eps_u + 0 * (eps_c - eps_u) keeps only eps_u: the "
             "condition is not used at all, so nothing makes the pictures red or star-shaped.",
        "c": "the unconditional model was trained too (on the 10 % of steps whose condition "
             "was dropped), so it denoises into ShapeWorld pictures, only not the asked ones.",
        "d": "the average of all pictures is what a regression would give. A diffusion model "
             "samples: each start noise is carried to one picture of its own, not to the "
             "mean of them all.",
    }),
    hint_text="Write out the guided guess eps_u + s (eps_c - eps_u) at s = 0: which network "
              "is left, and what did it learn in training?",
    solution_text='```python\nprediction_scale_zero = "b: scale 0 leaves the unconditional '
                  'model alone, which learnt to draw any ShapeWorld picture"\n```\nScale 0 '
                  "leaves the unconditional model alone: it learnt to draw ShapeWorld "
                  "pictures in general, so each start noise becomes some shape in some "
                  "colour (now and then a shapeless one), whatever the prompt.",
    points=1,
    predict=True,
)
