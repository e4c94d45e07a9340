"""The CLIP loss, written to be read.

A batch holds N images and their N captions. Both encoders turn them into vectors;
after normalising to length 1, the dot product of an image vector and a text vector
is their cosine similarity. The N x N matrix of similarities should be large on the
diagonal (an image and its own caption) and small everywhere else.

CLIP reads each row of the matrix as a classification problem - "which of the N
captions belongs to this image?" - and each column as "which of the N images belongs
to this caption?", and averages the two cross-entropies. That is the whole
*contrastive* loss.

The similarities lie in [-1, 1], far too flat for a softmax, so they are multiplied by
a learned ``logit_scale`` (1 / temperature; CLIP starts it at 1/0.07 and clips it at
100). Like open_clip, the functions here take the scale already exponentiated.

Two copies of one caption in a batch make an off-diagonal pair that is in fact right.
The text encoder gives both copies the same vector, so their two columns of the matrix
are equal and the softmax splits its probability between them: the loss can no longer
reach 0 (log 2 is left in those rows), but its *gradient* is exactly the one of targets
that share the probability between the copies (``same_caption`` + ``clip_loss_soft``).
Exact duplicates are therefore harmless. Near-duplicates are not the same: "a red
circle" is also true of another red circle's picture, and the plain loss pushes that
pair apart. ``clip_loss_soft`` with a matrix of *which captions fit which images*
(``ShapeWorld.fit_matrix``) counts them as right.
"""

from collections.abc import Iterable

import torch
import torch.nn.functional as F

from mmlearn import checks


def similarity_matrix(image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
    """Cosine similarities: entry ``[i, j]`` compares image ``i`` with caption ``j``."""
    for name, value in (("image_features", image_features), ("text_features", text_features)):
        checks.tensor(value, name, ndim=2, dtype="float",
                      example="[N, D] (for one vector v write v[None])")
    if image_features.shape[1] != text_features.shape[1]:
        raise ValueError(f"image_features and text_features must have one length D (from one "
                         f"CLIP); got shapes {tuple(image_features.shape)} and "
                         f"{tuple(text_features.shape)}.")
    image_features = F.normalize(image_features, dim=-1)
    text_features = F.normalize(text_features, dim=-1)
    return image_features @ text_features.T


def clip_loss(image_features: torch.Tensor, text_features: torch.Tensor,
              logit_scale: torch.Tensor | float) -> torch.Tensor:
    """CLIP's symmetric cross-entropy over the N x N similarity matrix.

    ``image_features`` and ``text_features`` are N x D (normalised here, so raw encoder
    outputs are fine); ``logit_scale`` is exp(learned log-scale), e.g. ``model.logit_scale.exp()``.
    The right caption of image ``i`` is caption ``i``: the targets are the diagonal.
    """
    if image_features.shape != text_features.shape or image_features.ndim != 2:
        raise ValueError("image_features and text_features must both be N x D with the same "
                         f"shape; got {tuple(image_features.shape)} and "
                         f"{tuple(text_features.shape)}.")
    logits = logit_scale * similarity_matrix(image_features, text_features)  # N x N
    targets = torch.arange(len(logits), device=logits.device)
    image_to_text = F.cross_entropy(logits, targets)    # each row: pick the right caption
    text_to_image = F.cross_entropy(logits.T, targets)  # each column: pick the right image
    return (image_to_text + text_to_image) / 2


def same_caption(captions: list[str]) -> torch.Tensor:
    """``M[i, j]`` is True when captions ``i`` and ``j`` are the same text.

    With duplicates in a batch, image ``j`` matches caption ``i`` exactly as well as
    image ``i`` does, so the "wrong" off-diagonal pair is in fact right.
    """
    if isinstance(captions, str) or not isinstance(captions, Iterable):
        raise TypeError(f"captions must be a list of strings (one per picture of the batch); "
                        f"got {checks.describe(captions)}.")
    captions = list(captions)
    for i, caption in enumerate(captions):
        if not isinstance(caption, str):
            raise TypeError(f"captions[{i}] must be a string; got {checks.describe(caption)}.")
    ids = {caption: k for k, caption in enumerate(dict.fromkeys(captions))}
    caption_ids = torch.tensor([ids[c] for c in captions])
    return caption_ids[:, None] == caption_ids[None, :]


def clip_loss_soft(image_features: torch.Tensor, text_features: torch.Tensor,
                   logit_scale: torch.Tensor | float, matches: torch.Tensor) -> torch.Tensor:
    """``clip_loss`` when several captions of the batch are right for an image.

    ``matches[i, j]`` (bool, N x N, True on the diagonal) says caption ``j`` fits image
    ``i``. Each image's target spreads probability evenly over all captions that fit it,
    and each caption's target over all images it fits, instead of the single diagonal
    entry. With ``matches = torch.eye(N, dtype=bool)`` it is exactly ``clip_loss``.
    """
    if not bool(matches.diagonal().all()):
        raise ValueError("matches must be True on the diagonal: every caption fits its own image.")
    logits = logit_scale * similarity_matrix(image_features, text_features)
    matches = matches.to(logits.device, logits.dtype)
    image_targets = matches / matches.sum(dim=1, keepdim=True)      # rows: images
    text_targets = matches.T / matches.T.sum(dim=1, keepdim=True)   # rows: captions
    image_to_text = F.cross_entropy(logits, image_targets)
    text_to_image = F.cross_entropy(logits.T, text_targets)
    return (image_to_text + text_to_image) / 2
