"""Training a small CLIP on ShapeWorld: the loop the notebook and the script share.

One step is the whole idea of CLIP:

1. take a batch of N images and their N captions,
2. encode both, and compare every image with every caption (an N x N matrix),
3. push the diagonal up and the rest down with the contrastive loss,
4. take a gradient step with AdamW.

Every ``eval_every`` steps the model is tested *zero-shot* on images it never saw:
``test_seen`` (colour x shape combinations met in training) and ``test_unseen``
(the held-out combinations), using the plain prompts "a red circle", ... as the
classifier. The returned ``History`` holds the loss curve and those accuracies.

    >>> model, tokenizer = new_course_clip(seed=0)
    >>> history = train(model, tokenizer)   # lesson 01's live run: TrainConfig() defaults
    >>> history.final()                     # {'seen': ..., 'unseen': ...}

``targets`` decides which captions of a batch count as right for an image (see
``mmlearn.losses``). Treating near-duplicate captions as right ("fits") did not beat the
plain CLIP "diagonal" targets on unseen combinations (benchmarks/results/recorded.md), so
the plain loss is the default.

``augment=True`` shows the model randomly tilted, shifted, scaled, blurred and noisy views
of each training picture instead of the picture itself. Zero-shot accuracy on clean
pictures stays as high, and the model becomes a steadier guide for VQGAN+CLIP (lesson
04): the judge finds the prompted shape in more of the generated pictures (measured there;
crops and mirroring as well made it a worse guide).
"""

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import torch
import torchvision.transforms.v2 as v2
from tqdm.auto import tqdm

from mmlearn import checks, losses, shapes, zeroshot
from mmlearn.clip import to_model_input
from mmlearn.config import seed_everything
from mmlearn.images import float_to_uint8
from mmlearn.model_configs import COURSE_CLIP, register
from mmlearn.optim import decay_groups, set_learning_rate, warmup_cosine


@dataclass
class TrainConfig:
    """Everything that decides a training run (same config + same seed = same model)."""
    steps: int = 600
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.1
    warmup_steps: int = 50
    n_train: int = 20_000       # ShapeWorld training images, drawn once up front
    max_objects: int = 1        # objects per training image (1 = single shapes only)
    targets: str = "diagonal"   # which captions count as right: see TARGETS
    augment: bool = False       # train on random views of the pictures: see augment_views
    eval_every: int = 100       # steps between zero-shot evaluations (0 = only at the end)
    n_eval: int = 500           # test images per split for those evaluations
    seed: int = 0
    resolution: int = 32


# Which captions of a batch count as right for an image (see ``batch_loss``):
TARGETS = {
    "diagonal": "only its own caption (plain CLIP)",
    "same_caption": "its own caption and every identical copy of it",
    "fits": "every caption of the batch that is true of it ('a red circle' for any red circle)",
}


@dataclass
class History:
    """What happened during training: the loss curve and the zero-shot accuracies."""
    config: dict
    loss: list[float] = field(default_factory=list)           # one value per step
    eval_steps: list[int] = field(default_factory=list)
    seen_accuracy: list[float] = field(default_factory=list)
    unseen_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0                                      # wall time of the whole run

    def final(self) -> dict:
        """The last evaluation: ``{'seen': accuracy, 'unseen': accuracy}``."""
        return {"seen": self.seen_accuracy[-1], "unseen": self.unseen_accuracy[-1]}


def new_course_clip(seed: int = 0):
    """A freshly initialised (untrained) course CLIP and its tokenizer, via open_clip."""
    import open_clip

    register()
    seed_everything(seed)
    logging.disable(logging.WARNING)  # open_clip warns "initialized randomly": that is the point
    try:
        model = open_clip.create_model(COURSE_CLIP).eval()  # train() switches to training mode
    finally:
        logging.disable(logging.NOTSET)
    return model, open_clip.get_tokenizer(COURSE_CLIP)


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then a cosine decay to zero (see ``mmlearn.optim.warmup_cosine``)."""
    checks.integer(step, "step", minimum=0)
    checks.instance(config, "config", TrainConfig, "a train.TrainConfig")
    return warmup_cosine(step, config.steps, config.lr, config.warmup_steps)


def make_optimizer(model, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; weight decay only on matrices (not on biases, norms or the temperature)."""
    groups = decay_groups(model, config.weight_decay)
    try:  # the fused version is 4x faster on a CPU (torch >= 2.4); same maths
        return torch.optim.AdamW(groups, lr=config.lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(groups, lr=config.lr)


def tokenize_once(tokenizer, captions: list[str]) -> torch.Tensor:
    """Tokens for every caption, tokenizing each distinct caption only once."""
    if not callable(tokenizer):
        raise TypeError(f"tokenizer must be the model's tokenizer (a function of a list of "
                        f"texts); got {checks.describe(tokenizer)}.")
    captions = checks.texts(captions, "captions", "a big red circle")
    unique = list(dict.fromkeys(captions))
    tokens = tokenizer(unique)
    row = {caption: k for k, caption in enumerate(unique)}
    return tokens[[row[c] for c in captions]]


def augment_views(images: torch.Tensor) -> torch.Tensor:
    """A random view of every uint8 picture [N, 3, H, W], drawn from torch's generator.

    Tilted by up to 15 degrees, shifted by up to 6 %, scaled by 0.85-1.15, sometimes
    blurred, with a little noise: the picture changes, its caption stays true (no crops
    that cut the shape, no mirroring that swaps left and right).
    """
    view = v2.Compose([
        v2.RandomAffine(degrees=15, translate=(0.06, 0.06), scale=(0.85, 1.15)),
        v2.RandomApply([v2.GaussianBlur(3, sigma=(0.1, 1.0))], p=0.3),
        v2.GaussianNoise(sigma=0.03, clip=True),
    ])
    views = torch.stack([view(image) for image in images.float() / 255])
    return float_to_uint8(views)


def batch_loss(model, data, batch: torch.Tensor, tokens: torch.Tensor,
               targets: str = "diagonal", augment: bool = False) -> torch.Tensor:
    """The contrastive loss of one batch: items ``batch`` of ``data`` (a ShapeWorld).

    ``tokens`` holds the tokenized captions of the whole data set.
    """
    pictures = augment_views(data.images[batch]) if augment else data.images[batch]
    images = to_model_input(pictures, model)  # on the model's device
    image_features, text_features, logit_scale = model(images, tokens[batch].to(images.device))
    if targets == "diagonal":
        return losses.clip_loss(image_features, text_features, logit_scale)
    if targets == "same_caption":
        matches = losses.same_caption([data.captions[i] for i in batch])
    else:
        matches = data.fit_matrix(batch)
    return losses.clip_loss_soft(image_features, text_features, logit_scale, matches)


@torch.no_grad()
def evaluate(model, tokenizer, sets: dict) -> dict:
    """Zero-shot top-1 over all colour x shape classes on each test set (plain prompts)."""
    if not isinstance(sets, Mapping) or not sets:
        raise TypeError(f"sets must be a dict of named test sets, as held_out_sets(500) "
                        f"returns ({{'seen': ShapeWorld, 'unseen': ShapeWorld}}); got "
                        f"{checks.describe(sets)}.")
    for name, data in sets.items():
        checks.instance(data, f"sets[{name!r}]", shapes.ShapeWorld, "a shapes.ShapeWorld")
    was_training = model.training
    model.eval()
    scores = {name: zeroshot.dataset_accuracy(model, tokenizer, data)
              for name, data in sets.items()}
    model.train(was_training)
    return scores


def held_out_sets(n: int, seed: int = 0, resolution: int = 32) -> dict:
    """The held-out evaluation sets: seen and unseen combinations, one object each."""
    return {"seen": shapes.ShapeWorld(n, "test_seen", seed=seed, resolution=resolution),
            "unseen": shapes.ShapeWorld(n, "test_unseen", seed=seed, resolution=resolution)}


def random_batches(n: int, batch_size: int, seed: int = 0):
    """Endless batches of item indices: each item once per epoch, reshuffled every epoch.

    The arguments are checked at the call, not at the first ``next``: a generator function
    would only run its first line when the training loop asks for the first batch.
    """
    n = checks.integer(n, "n", minimum=1)
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    return _batches(n, batch_size, checks.seed(seed))


def _batches(n: int, batch_size: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    order = torch.empty(0, dtype=torch.long)
    while True:
        if len(order) < batch_size:
            order = torch.cat([order, torch.randperm(n, generator=generator)])
        batch, order = order[:batch_size], order[batch_size:]
        yield batch


def train(model, tokenizer, config: TrainConfig | None = None, data=None,
          evaluation: dict | None = None, progress: bool = True) -> History:
    """Train ``model`` contrastively on ShapeWorld; returns the ``History``.

    ``data`` (a ``ShapeWorld``) and ``evaluation`` (as from ``held_out_sets``) are drawn
    from ``config`` when not given.
    """
    config = config or TrainConfig()
    if config.targets not in TARGETS:
        raise ValueError(f"targets must be one of {', '.join(TARGETS)}; got {config.targets!r}.")
    if config.steps <= 0 or config.batch_size <= 1:
        raise ValueError("steps must be >= 1 and batch_size >= 2 (a contrastive batch "
                         "needs something to contrast with).")
    start = time.perf_counter()
    seed_everything(config.seed)
    if data is None:
        data = shapes.ShapeWorld(config.n_train, "train", seed=config.seed,
                                 resolution=config.resolution, max_objects=config.max_objects)
    if evaluation is None:
        evaluation = held_out_sets(config.n_eval, config.seed, config.resolution)
    tokens = tokenize_once(tokenizer, data.captions)
    optimizer = make_optimizer(model, config)
    batches = random_batches(len(data), config.batch_size, config.seed)
    history = History(config=asdict(config))
    model.train()

    bar = tqdm(range(config.steps), desc="training CLIP", disable=not progress)
    for step in bar:
        set_learning_rate(optimizer, learning_rate(step, config))
        loss = batch_loss(model, data, next(batches), tokens, config.targets, config.augment)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():  # as in CLIP: the temperature may not go below 1/100
            model.logit_scale.clamp_(0, math.log(100))
        history.loss.append(loss.item())

        if step + 1 == config.steps or (config.eval_every and (step + 1) % config.eval_every == 0):
            scores = evaluate(model, tokenizer, evaluation)
            history.eval_steps.append(step + 1)
            history.seen_accuracy.append(scores["seen"])
            history.unseen_accuracy.append(scores["unseen"])
            bar.set_postfix(loss=f"{loss.item():.3f}", seen=f"{scores['seen']:.2f}",
                            unseen=f"{scores['unseen']:.2f}")
    model.eval()
    history.seconds = time.perf_counter() - start
    return history
