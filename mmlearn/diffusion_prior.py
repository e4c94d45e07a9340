"""DALL-E 2's diffusion prior, small: draw a CLIP image embedding for a caption.

The regression prior (``unclip.PriorMLP``) maps a caption to one image embedding, the
average of the embeddings of all pictures that fit it. For "a red circle" that is the
embedding of a medium red circle near the middle, and the decoder, given the same
embedding eight times, draws nearly the same circle eight times. Yet the embedding of a
real picture says where its object is and how big (decoded from the embeddings of real
pictures, the decoder spreads its objects as widely as the pictures do: lesson 06).

A diffusion prior learns the whole distribution of image embeddings given the caption,
as the decoder learns the distribution of pictures given an embedding: start from noise
in the 64-number embedding space and denoise it, step by step, with the caption's text
embedding as the condition. Each draw is another plausible picture's embedding, small or
big, left or right. It has classifier-free guidance of its own (the caption is dropped
10 % of the time in training), with the same fidelity-for-variety trade.

DALL-E 2's prior is a transformer that predicts the clean embedding; this one is a
residual MLP that predicts the noise, like the course's decoder, so the two share
``diffusion.sample`` (schedule, DDIM steps and guidance).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmlearn import checks, diffusion
from mmlearn.checkpoints import half_precision
from mmlearn.config import model_device
from mmlearn.optim import fit_pairs


class ResidualBlock(nn.Module):
    """LayerNorm -> Linear -> GELU -> Linear, added back; the condition is added first."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(),
                                 nn.Linear(2 * width, width))

    def forward(self, h: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return h + self.mlp(self.norm(h + condition))


class DiffusionPrior(nn.Module):
    """Predicts the noise in a noisy image embedding, given the time and the text embedding.

    Embeddings are unit vectors of ``dim`` numbers; the diffusion runs on them times
    sqrt(dim), so that each number has a spread of about 1, like the noise it is mixed
    with. ``timesteps``, ``p_uncond`` and ``scale`` (the guidance used when none is
    given) travel with the weights.
    """

    def __init__(self, dim: int = 64, width: int = 256, blocks: int = 3, emb_dim: int = 64,
                 timesteps: int = 100, p_uncond: float = 0.1, scale: float = 2.0):
        super().__init__()
        self.dim = self.in_channels = self.cond_dim = dim  # diffusion.sample's duck type
        self.width, self.emb_dim, self.timesteps = width, emb_dim, timesteps
        self.p_uncond, self.scale = p_uncond, scale
        self.input = nn.Linear(dim, width)
        self.condition = nn.Sequential(nn.Linear(dim + emb_dim, width), nn.GELU(),
                                       nn.Linear(width, width))
        self.blocks = nn.ModuleList(ResidualBlock(width) for _ in range(blocks))
        self.output = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, dim))
        # the "no caption" condition for classifier-free guidance, learned
        self.null_condition = nn.Parameter(torch.zeros(dim))
        self.schedule = diffusion.cosine_schedule(timesteps)

    def forward(self, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor | None) -> torch.Tensor:
        if text is None:
            text = self.null_condition.expand(len(x), -1)
        times = diffusion.time_embedding(t, self.emb_dim)
        condition = self.condition(torch.cat([text * math.sqrt(self.dim), times], 1))
        h = self.input(x)
        for block in self.blocks:
            h = block(h, condition)
        return self.output(h)

    @torch.no_grad()
    def sample(self, text: torch.Tensor, n: int = 1, scale: float | None = None,
               steps: int = 25, seed: int = 0) -> torch.Tensor:
        """Text embeddings [P, dim] -> ``n`` image embeddings each [P, n, dim], unit vectors.

        Prompt p's draws start from the same noise whatever else is in the batch (DDIM is
        deterministic given its start), so a prompt gets the same embeddings in any company.
        """
        checks.tensor(text, "text", ndim=2, dtype="float", shape=(None, self.dim),
                      example=f"of text embeddings [P, {self.dim}]")
        n = checks.integer(n, "n", minimum=1)
        scale = self.scale if scale is None else checks.number_in_range(scale, "scale", 0.0,
                                                                        50.0, 1.0)
        steps = checks.integer(steps, "steps", minimum=1, maximum=self.timesteps)
        generator = torch.Generator().manual_seed(checks.seed(seed))
        start = torch.randn((n, self.dim), generator=generator).repeat(len(text), 1)
        text = F.normalize(text.float(), dim=-1).repeat_interleave(n, dim=0)
        x = diffusion.sample(self, text.to(model_device(self)), (self.dim,), self.schedule,
                             steps, scale, "ddim", generator, noise=start)
        return F.normalize(x.cpu(), dim=-1).view(-1, n, self.dim)


def prior_loss(prior: DiffusionPrior, text: torch.Tensor, image: torch.Tensor,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """DDPM's simple loss on scaled image embeddings: noise them to a random time t, predict
    the noise, mean squared error; the caption is dropped with probability ``p_uncond``."""
    device = model_device(prior)
    x0 = image.to(device) * math.sqrt(prior.dim)
    t = diffusion.draw(torch.randint, prior.timesteps, (len(x0),), generator=generator,
                       device=device)
    noise = diffusion.draw(torch.randn, x0.shape, generator=generator, device=device)
    text = diffusion.drop_condition(prior, text.to(device), prior.p_uncond, generator)
    return F.mse_loss(prior(diffusion.add_noise(x0, t, noise, prior.schedule), t, text), noise)


def train_prior(prior: DiffusionPrior, text: torch.Tensor, image: torch.Tensor,
                steps: int = 6000, batch_size: int = 256, lr: float = 1e-3, seed: int = 0,
                log_every: int = 0) -> list[float]:
    """Fit the prior on (text embedding, image embedding) pairs; returns the loss per step."""
    checks.instance(prior, "prior", DiffusionPrior, "a diffusion_prior.DiffusionPrior()")
    for name, value in (("text", text), ("image", image)):
        checks.tensor(value, name, ndim=2, dtype="float", shape=(None, prior.dim),
                      example=f"of embeddings [N, {prior.dim}]")
    checks.same_batch({"text": text, "image": image})
    steps = checks.integer(steps, "steps", minimum=0)
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    generator = torch.Generator().manual_seed(checks.seed(seed))
    losses = fit_pairs(prior, lambda batch: prior_loss(prior, text[batch], image[batch], generator),
                       len(text), steps, batch_size, lr, warmup=steps // 20,
                       generator=generator, log_every=log_every, name="diffusion prior")
    prior.eval()
    return losses


def checkpoint(prior: DiffusionPrior) -> dict:
    """Its settings and fp16 weights (for ``checkpoints.save_checkpoint``)."""
    config = {"dim": prior.dim, "width": prior.width, "blocks": len(prior.blocks),
              "emb_dim": prior.emb_dim, "timesteps": prior.timesteps,
              "p_uncond": prior.p_uncond, "scale": prior.scale}
    return {"config": config, "state_dict": half_precision(prior.state_dict())}


def from_checkpoint(saved: dict) -> DiffusionPrior:
    prior = DiffusionPrior(**saved["config"])
    prior.load_state_dict({k: v.float() for k, v in saved["state_dict"].items()})
    return prior.eval()
