"""Diffusion from scratch: add noise step by step, learn to take it away again.

A diffusion model (Ho et al., 2020, "DDPM") learns to generate by learning to *denoise*.
Training takes a clean sample x_0, picks a random time t, mixes in Gaussian noise

    x_t = sqrt(abar_t) * x_0 + sqrt(1 - abar_t) * eps          (the forward process)

and asks a network to say which noise ``eps`` was added (an ordinary mean squared error).
Sampling starts from pure noise x_T and uses the network's guess of the noise to step
back, x_T -> x_{T-1} -> ... -> x_0: DDPM's random steps, or DDIM's (Song et al., 2020)
deterministic ones, which may skip most of the times (25 steps instead of 1000).

Classifier-free guidance (Ho & Salimans, 2022): during training the condition (here a
CLIP embedding) is replaced by a learned "no condition" vector with probability
``p_uncond``, so one network is both conditional and unconditional. At sampling time

    eps = eps_uncond + scale * (eps_cond - eps_uncond)

scale 0 is the unconditional model, 1 the conditional one, > 1 exaggerates whatever
the condition changes: sharper, more typical pictures, less variety.

    >>> from mmlearn import diffusion
    >>> schedule = diffusion.cosine_schedule(200)
    >>> model = diffusion.TinyUNet(in_channels=16, cond_dim=64)
    >>> loss = diffusion.diffusion_loss(model, x0, cond, schedule)         # training
    >>> x = diffusion.sample(model, cond, (16, 8, 8), schedule, steps=25)  # generation

The pieces, in reading order: ``cosine_schedule`` (how much signal is left at each t),
``add_noise`` (the forward jump q(x_t | x_0)), ``TinyUNet`` (the denoiser),
``diffusion_loss`` (predict the noise), ``guided_noise`` (classifier-free guidance),
``predict_x0``, ``ddpm_step`` and ``ddim_step`` (one reverse step each), ``sample``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmlearn import checks
from mmlearn.config import model_device

# ---------------------------------------------------------------------------- the schedule


@dataclass
class Schedule:
    """The noise schedule: ``alpha_bar[t]`` is the share of signal variance left at time t.

    Times run 0..T-1; ``alpha_bar`` falls from almost 1 (nearly clean) to almost 0 (pure
    noise). ``betas[t] = 1 - alpha_bar[t] / alpha_bar[t-1]`` is the noise added by step t.
    """

    alpha_bar: torch.Tensor  # [T], float64 for exact arithmetic, cast where used

    @property
    def steps(self) -> int:
        return len(self.alpha_bar)

    @property
    def betas(self) -> torch.Tensor:
        previous = torch.cat([torch.ones(1, dtype=self.alpha_bar.dtype), self.alpha_bar[:-1]])
        return 1 - self.alpha_bar / previous


def cosine_schedule(steps: int = 200, offset: float = 0.008, end: float = 0.97) -> Schedule:
    """Nichol & Dhariwal's (2021) cosine schedule: alpha_bar(t) = f(t) / f(0) with
    f(u) = cos^2((u + s) / (1 + s) * pi / 2), u running from 0 to ``end`` over the T steps.

    Why cosine, not DDPM's linear betas: with few steps the linear schedule destroys the
    picture too early (many steps see almost pure noise and learn little); the cosine
    keeps information longer and spends the steps more evenly.

    Why stop at ``end`` = 0.97 rather than 1: at u = 1 the signal left is exactly 0, and
    the first sampling step computes x_0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar), which
    divides by almost 0. With alpha_bar(T-1) = 6.1e-8 (the published schedule at T = 200,
    betas capped at 0.999) every small error of the noise guess became a huge x_0, and a
    course decoder drew coloured noise; stopping at 0.97 leaves alpha_bar(T-1) = 2.2e-3
    (signal amplitude 0.047), close enough to pure noise to start from.
    """
    steps = checks.integer(steps, "steps", minimum=1)
    checks.memory_budget(steps * 8 * 4, f"A schedule of {steps} steps")
    offset = checks.positive_number(offset, "offset", 0.008)
    end = checks.number_in_range(end, "end", 1e-3, 1.0, 0.97)
    u = torch.arange(1, steps + 1, dtype=torch.float64) / steps * end
    f = lambda v: torch.cos((v + offset) / (1 + offset) * math.pi / 2) ** 2  # noqa: E731
    return Schedule(f(u) / f(torch.zeros(1, dtype=torch.float64)))


def _check_step_inputs(schedule: Schedule, pictures: dict, times: dict,
                       earliest: int = 0) -> None:
    """The arguments of the forward jump and the reverse steps, by shape and dtype only.

    ``pictures`` (x0, noise, eps, ...) are float tensors of one shape, a batch first;
    ``times`` (t, t_prev) are whole numbers from ``earliest`` to T - 1, or integer tensors
    [B] (or [1], one time for all). A tensor's values are not scanned: these run in every
    step of a sampling loop, and torch's IndexError names a time past the end.
    """
    checks.instance(schedule, "schedule", Schedule,
                    "a Schedule such as diffusion.cosine_schedule(200)")
    (first, x), *others = pictures.items()
    checks.tensor(x, first, dtype="float", example="of pictures or latents [B, C, H, W]")
    if x.ndim == 0:
        raise ValueError(f"{first} must have a batch dimension first, e.g. [B, C, H, W]; got "
                         f"{checks.describe_tensor(x)}.")
    for name, value in others:
        checks.tensor(value, name, dtype="float", shape=tuple(x.shape),
                      example=f"the shape of {first}")
    for name, t in times.items():
        if isinstance(t, torch.Tensor):
            checks.tensor(t, name, ndim=(0, 1), dtype="integer",
                          example="of times [B], e.g. torch.full((B,), 120)")
            if t.ndim == 1 and len(t) not in (1, len(x)):
                raise ValueError(f"{name} must hold one time per sample ({len(x)}) or one for "
                                 f"all; got {checks.describe_tensor(t)}.")
        else:
            t = checks.integer(t, f"{name} (a whole number or an integer tensor [B])")
            if not earliest <= t < schedule.steps:
                raise ValueError(f"{name} must be a time from {earliest} to "
                                 f"{schedule.steps - 1} (this schedule has {schedule.steps} "
                                 f"steps); got {t}.")


def _check_clip_x0(clip_x0) -> None:
    """None (no bound) or a finite bound above 0 for the guessed clean picture."""
    if clip_x0 is not None:
        checks.positive_number(clip_x0, "clip_x0 (or None)", 1.0)


def _at(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``values[t]`` for a batch of times, shaped to broadcast over samples like ``like``."""
    return values.to(like.device)[t].to(like.dtype).view(-1, *[1] * (like.ndim - 1))


def add_noise(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
              schedule: Schedule) -> torch.Tensor:
    """The forward process in one jump: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps.

    Adding a little Gaussian noise t times in a row is the same as adding one larger
    Gaussian noise once (variances of independent Gaussians add up), so training can
    jump straight to any t without simulating the steps before it.
    """
    _check_step_inputs(schedule, {"x0": x0, "noise": noise}, {"t": t})
    abar = _at(schedule.alpha_bar, t, x0)
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise


# ---------------------------------------------------------------------------- the denoiser


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of the time step (as a transformer's positions): [B] -> [B, dim].

    The network must know how noisy its input is: at large t it should guess the broad
    layout, at small t only fix fine detail.
    """
    half = dim // 2
    frequencies = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * frequencies[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResBlock(nn.Module):
    """Two 3x3 convolutions with a residual; time and condition enter as a scale and a shift.

    Scale-and-shift ("FiLM", as in improved DDPM and unCLIP's decoder) lets the condition
    change every feature map of the block, not only add a constant to it.
    """

    def __init__(self, c_in: int, c_out: int, emb_dim: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(8, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out)
        self.norm2 = nn.GroupNorm(8, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


class TinyUNet(nn.Module):
    """A compact UNet: noisy input, time and condition -> its guess of the noise.

    ``widths`` are the channels at each resolution; between levels the picture halves
    (down) and doubles again (up), with skip connections carrying the detail across. The
    condition (a CLIP embedding, ``cond_dim`` numbers) joins the time embedding; when it
    is dropped, a learned ``null_condition`` vector stands in (classifier-free guidance).
    ``cond_gain`` multiplies the condition first: a unit-length CLIP embedding of 64 numbers
    has entries of about 1/8, so without a gain of about sqrt(cond_dim) the condition starts
    out small next to the time embedding. (Measured alone, a gain of 8 did not speed up
    the course decoder's training; with more training on noisy times it is part of the
    recipe that did, see ``unclip.decoder_loss``.) The layout (two levels, FiLM, no
    attention) was chosen without comparing alternatives; only the widths' speed was
    measured (scripts/train_unclip.py).
    """

    def __init__(self, in_channels: int = 3, widths: tuple[int, ...] = (32, 64),
                 cond_dim: int = 64, emb_dim: int = 128, cond_gain: float = 1.0):
        super().__init__()
        self.in_channels, self.cond_dim, self.emb_dim = in_channels, cond_dim, emb_dim
        self.cond_gain = cond_gain
        self.widths = tuple(widths)
        self.time_mlp = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU(),
                                      nn.Linear(emb_dim, emb_dim))
        self.cond_mlp = nn.Sequential(nn.Linear(cond_dim, emb_dim), nn.SiLU(),
                                      nn.Linear(emb_dim, emb_dim))
        self.null_condition = nn.Parameter(torch.zeros(cond_dim))
        self.stem = nn.Conv2d(in_channels, widths[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        previous = widths[0]
        for i, width in enumerate(widths):
            self.down.append(ResBlock(previous, width, emb_dim))
            previous = width
            if i < len(widths) - 1:
                self.downsample.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
        self.middle = ResBlock(previous, previous, emb_dim)
        self.up = nn.ModuleList()
        for width in reversed(widths):
            self.up.append(ResBlock(previous + width, width, emb_dim))
            previous = width
        self.head = nn.Sequential(nn.GroupNorm(8, previous), nn.SiLU(),
                                  nn.Conv2d(previous, in_channels, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)  # start by predicting "no noise": a calm start
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """x [B, C, H, W], t [B] (integers), cond [B, cond_dim] or None (unconditional)."""
        if cond is None:
            cond = self.null_condition.expand(len(x), -1)
        emb = self.time_mlp(time_embedding(t, self.emb_dim)) + self.cond_mlp(cond * self.cond_gain)
        h = self.stem(x)
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, emb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.middle(h, emb)
        for block in self.up:
            skip = skips.pop()
            if h.shape[-1] != skip.shape[-1]:
                h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = block(torch.cat([h, skip], dim=1), emb)
        return self.head(h)


def _check_denoiser(model) -> None:
    checks.instance(model, "model", TinyUNet,
                    "a diffusion.TinyUNet (an unCLIP's decoder is model.unet)")


def _check_condition(model: TinyUNet, cond, x: torch.Tensor) -> None:
    """One condition per sample, ``model.cond_dim`` numbers each (shape only)."""
    checks.tensor(cond, "cond", dtype="float", shape=(None, model.cond_dim),
                  example=f"of one embedding per sample [B, {model.cond_dim}]")
    checks.same_batch({"cond": cond, "the pictures": x})


def draw(random, *args, generator: torch.Generator | None = None,
         device: torch.device | str | None = None, **kwargs) -> torch.Tensor:
    """``random(*args)`` (torch.randn, torch.rand, torch.randint) drawn from ``generator``
    on the generator's own device, then moved to ``device``.

    PyTorch draws on a GPU only with a GPU generator; drawing where the generator is
    lets a CPU generator (``torch.Generator().manual_seed(0)``) seed work on any device,
    with the same numbers as on the CPU.
    """
    home = generator.device if generator is not None else device
    return random(*args, generator=generator, device=home, **kwargs).to(device)


def drop_condition(model: TinyUNet, cond: torch.Tensor, p_uncond: float,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace each row of ``cond`` by the model's null condition with probability ``p_uncond``.

    This is all classifier-free guidance needs in training: the same network learns the
    unconditional model on the dropped rows, for free.
    """
    drop = draw(torch.rand, len(cond), generator=generator, device=cond.device) < p_uncond
    return torch.where(drop[:, None], model.null_condition.expand_as(cond), cond)


# ---------------------------------------------------------------------------- training


def diffusion_loss(model: TinyUNet, x0: torch.Tensor, cond: torch.Tensor | None,
                   schedule: Schedule, p_uncond: float = 0.0,
                   generator: torch.Generator | None = None,
                   t: torch.Tensor | None = None) -> torch.Tensor:
    """DDPM's simple objective: noise x_0 to a random t, predict the noise, mean squared error.

    Why predict the noise and not the clean picture? Both carry the same information
    (x_0 follows from eps and x_t), but the noise has the same scale at every t, so one
    network handles all noise levels with targets of one size (Ho et al. found it
    trains better). The random draws (t, noise, dropped conditions) come from
    ``generator``, in that order, so a fixed seed gives a fixed loss. Pass ``t`` to choose
    the times yourself (see ``unclip.decoder_loss``); by default they are uniform. The
    inputs go to the model's device.
    """
    _check_denoiser(model)
    checks.instance(schedule, "schedule", Schedule,
                    "a Schedule such as diffusion.cosine_schedule(200)")
    checks.tensor(x0, "x0", dtype="float", ndim=4, shape=(None, model.in_channels, None, None),
                  example="of clean latents [B, C, H, W]")
    if cond is not None:
        _check_condition(model, cond, x0)
    checks.number_in_range(p_uncond, "p_uncond", 0.0, 1.0, 0.1)
    if t is not None:
        checks.tensor(t, "t (or None)", dtype="integer", shape=(len(x0),),
                      example="of one time per sample [B]")
    device = model_device(model)
    x0 = x0.to(device)
    cond = None if cond is None else cond.to(device)
    if t is None:
        t = draw(torch.randint, schedule.steps, (len(x0),), generator=generator, device=device)
    t = t.to(device)
    noise = draw(torch.randn, x0.shape, generator=generator, device=device)
    if cond is not None and p_uncond > 0:
        cond = drop_condition(model, cond, p_uncond, generator)
    return F.mse_loss(model(add_noise(x0, t, noise, schedule), t, cond), noise)


# ---------------------------------------------------------------------------- sampling


def guided_noise(model: TinyUNet, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
                 scale: float) -> torch.Tensor:
    """Classifier-free guidance: eps_u + scale * (eps_c - eps_u).

    Scale 0 returns exactly the unconditional model's guess (the conditional one is not
    even computed); otherwise both run in one batch of 2B.
    """
    # Duck-typed on purpose: any denoiser with a null condition will do (the exercise
    # tests plant a stub model and float times here).
    if not callable(model) or not hasattr(model, "null_condition"):
        raise TypeError(f"model must be a denoiser such as a diffusion.TinyUNet (an unCLIP's "
                        f"decoder is model.unet); got {checks.describe(model)}.")
    checks.tensor(x, "x", dtype="float", example="of noisy latents [B, C, H, W]")
    if x.ndim == 0:
        raise ValueError(f"x must have a batch dimension first, e.g. [B, C, H, W]; got "
                         f"{checks.describe_tensor(x)}.")
    checks.tensor(t, "t", shape=(len(x),), example="of one time per sample [B]")
    checks.tensor(cond, "cond", dtype="float", shape=(None, getattr(model, "cond_dim", None)),
                  example="of one embedding per sample [B, cond_dim]")
    checks.same_batch({"cond": cond, "x": x})
    checks.number_in_range(scale, "scale", -1e3, 1e3, 3.0)
    if scale == 0:
        return model(x, t, None)
    both = model(torch.cat([x, x]), torch.cat([t, t]),
                 torch.cat([model.null_condition.expand_as(cond), cond]))
    uncond, conditional = both.chunk(2)
    return uncond + scale * (conditional - uncond)


def predict_x0(x_t: torch.Tensor, eps: torch.Tensor, t: torch.Tensor,
               schedule: Schedule) -> torch.Tensor:
    """Undo the forward jump with the guessed noise:
    x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)."""
    _check_step_inputs(schedule, {"x_t": x_t, "eps": eps}, {"t": t})
    abar = _at(schedule.alpha_bar, t, x_t)
    return (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()


def _alpha_bar_before(schedule: Schedule, t_prev: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """alpha_bar at the previous time; 1 (a clean picture) before the first step (t_prev = -1)."""
    padded = torch.cat([torch.ones(1, dtype=schedule.alpha_bar.dtype), schedule.alpha_bar])
    return _at(padded, t_prev + 1, like)


def ddpm_step(x_t: torch.Tensor, eps: torch.Tensor, t: torch.Tensor, t_prev: torch.Tensor,
              schedule: Schedule, noise: torch.Tensor,
              clip_x0: float | None = None) -> torch.Tensor:
    """One random reverse step x_t -> x_{t_prev}: the posterior mean plus fresh noise.

    Given a guess of x_0, the forward process says where x_{t_prev} lies: a Gaussian with
    mean (sqrt(abar_prev) beta x_0 + sqrt(alpha) (1 - abar_prev) x_t) / (1 - abar_t)
    and variance beta (1 - abar_prev) / (1 - abar_t), where alpha = abar_t / abar_prev and
    beta = 1 - alpha (the step may skip times: then "one step" spans several). The last
    step (t_prev = -1) adds no noise. ``clip_x0`` bounds the guessed x_0 first.
    """
    _check_step_inputs(schedule, {"x_t": x_t, "eps": eps, "noise": noise}, {"t": t})
    _check_step_inputs(schedule, {"x_t": x_t}, {"t_prev": t_prev}, earliest=-1)
    _check_clip_x0(clip_x0)
    t_prev = torch.as_tensor(t_prev)  # a whole number works too
    abar, abar_prev = _at(schedule.alpha_bar, t, x_t), _alpha_bar_before(schedule, t_prev, x_t)
    alpha = abar / abar_prev
    beta = 1 - alpha
    x0 = predict_x0(x_t, eps, t, schedule)
    if clip_x0 is not None:
        x0 = x0.clamp(-clip_x0, clip_x0)
    mean = (abar_prev.sqrt() * beta * x0 + alpha.sqrt() * (1 - abar_prev) * x_t) / (1 - abar)
    variance = beta * (1 - abar_prev) / (1 - abar)
    last = (t_prev < 0).view(-1, *[1] * (x_t.ndim - 1))
    return torch.where(last, mean, mean + variance.sqrt() * noise)


def ddim_step(x_t: torch.Tensor, eps: torch.Tensor, t: torch.Tensor, t_prev: torch.Tensor,
              schedule: Schedule, clip_x0: float | None = None) -> torch.Tensor:
    """One deterministic DDIM step (eta = 0): guess x_0, then re-noise it to t_prev with the
    *same* noise guess.

    x_{t_prev} = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev) eps_hat. No fresh noise, so
    the same start gives the same picture, and big jumps between times stay stable.
    """
    _check_step_inputs(schedule, {"x_t": x_t}, {"t_prev": t_prev}, earliest=-1)
    _check_clip_x0(clip_x0)
    x0 = predict_x0(x_t, eps, t, schedule)
    if clip_x0 is not None:
        x0 = x0.clamp(-clip_x0, clip_x0)
        eps = (x_t - _at(schedule.alpha_bar, t, x_t).sqrt() * x0) / (
            1 - _at(schedule.alpha_bar, t, x_t)).sqrt()
    abar_prev = _alpha_bar_before(schedule, t_prev, x_t)
    return abar_prev.sqrt() * x0 + (1 - abar_prev).sqrt() * eps


def sampling_times(schedule: Schedule, steps: int) -> list[int]:
    """``steps`` evenly spaced times from T-1 down to 0 (DDIM's sub-sequence)."""
    if not isinstance(steps, int) or not 1 <= steps <= schedule.steps:
        raise ValueError(f"steps must be a whole number from 1 to {schedule.steps}, got {steps!r}.")
    return sorted({round(x) for x in torch.linspace(0, schedule.steps - 1, steps).tolist()},
                  reverse=True)


@torch.no_grad()
def sample(model: TinyUNet, cond: torch.Tensor | None, shape: tuple[int, ...],
           schedule: Schedule, steps: int = 25, scale: float = 1.0, sampler: str = "ddim",
           generator: torch.Generator | None = None, clip_x0: float | None = None,
           frames: list | None = None, n: int | None = None,
           noise: torch.Tensor | None = None) -> torch.Tensor:
    """Pure noise -> samples, in ``steps`` reverse steps (DDIM or DDPM) with guidance ``scale``.

    ``cond`` [B, cond_dim] gives one sample per row (None: unconditional, ``n`` samples).
    ``shape`` is one sample's shape, e.g. (16, 8, 8). ``frames``, if a list, receives the
    current x after every step (for pictures of the process). ``noise`` [B, *shape], if
    given, is the starting x_T (else drawn from ``generator``).
    """
    if sampler not in ("ddim", "ddpm"):
        raise ValueError(f"sampler must be 'ddim' or 'ddpm', got {sampler!r}.")
    batch = len(cond) if cond is not None else n
    if batch is None:
        raise ValueError("Without a condition, say how many samples: n=...")
    device = model_device(model)
    cond = None if cond is None else cond.to(device)
    x = (draw(torch.randn, (batch, *shape), generator=generator, device=device) if noise is None
         else noise.to(device))
    times = sampling_times(schedule, steps)
    for i, t_now in enumerate(times):
        t = torch.full((batch,), t_now, dtype=torch.long, device=device)
        t_prev = torch.full_like(t, times[i + 1] if i + 1 < len(times) else -1)
        eps = model(x, t, None) if cond is None else guided_noise(model, x, t, cond, scale)
        if sampler == "ddim":
            x = ddim_step(x, eps, t, t_prev, schedule, clip_x0)
        else:
            noise = draw(torch.randn, x.shape, generator=generator, device=device)
            x = ddpm_step(x, eps, t, t_prev, schedule, noise, clip_x0)
        if frames is not None:
            frames.append(x.clone())
    return x
