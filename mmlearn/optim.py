"""How the course's models are optimised: one learning-rate schedule, one way to group weights.

The CLIP, the VQGAN, the tiny DALL-E and the unCLIP models are all trained the same way:
AdamW (or Adam), a linear warm-up, then a cosine decay. Written once, here.
"""

import math

import torch


def warmup_cosine(step: int, steps: int, peak: float, warmup: int, floor: float = 0.0) -> float:
    """The learning rate at ``step`` of ``steps``: a gentle start, then a gentle landing.

    A linear warm-up to ``peak`` over ``warmup`` steps keeps the first, random-direction
    updates small (Adam's moment estimates are still noisy); then a half cosine takes
    the rate down to ``floor * peak`` at the last step.
    """
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def parameter_count(model: torch.nn.Module) -> int:
    """How many numbers ``model`` learns: the size every lesson quotes for a model."""
    return sum(p.numel() for p in model.parameters())


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Give every parameter group of ``optimizer`` the learning rate ``lr``."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW parameter groups: weight decay on matrices only.

    Decay pulls weights towards zero. For the matrices of linear and convolution layers
    that is a useful brake; for biases, norm scales and CLIP's temperature it only
    moves them away from where they need to be, so those (the tensors of fewer than
    two dimensions) get none.
    """
    parameters = [p for p in model.parameters() if p.requires_grad]
    return [{"params": [p for p in parameters if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in parameters if p.ndim < 2], "weight_decay": 0.0}]


def fit_pairs(model: torch.nn.Module, batch_loss, n: int, steps: int, batch_size: int,
              lr: float, warmup: int, generator: torch.Generator, weight_decay: float = 1e-4,
              log_every: int = 0, name: str = "model") -> list[float]:
    """The loop both unCLIP priors train with; returns the loss per step.

    Each step draws ``batch_size`` of the ``n`` training pairs from ``generator`` and
    minimises ``batch_loss(indices)`` with AdamW under ``warmup_cosine``. The model is left
    in train mode; the caller decides what comes after.
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    losses = []
    model.train()
    for step in range(steps):
        batch = torch.randint(n, (batch_size,), generator=generator)
        set_learning_rate(optimizer, warmup_cosine(step, steps, lr, warmup))
        loss = batch_loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if log_every and (step % log_every == 0 or step == steps - 1):
            print(f"{name} step {step:5d}  loss {loss.item():.4f}", flush=True)
    return losses
