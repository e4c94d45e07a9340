"""Zero-shot classification: a classifier made of sentences, not of training labels.

CLIP was never trained to tell a red circle from a blue square. But it can say how
well an image fits a sentence. So write one prompt per class ("a red circle",
"a blue square", ...), embed the prompts with the text encoder, and call the class
whose prompt is most similar to the image the prediction. The normalised text
embeddings, one column per class, *are* the weights of a linear classifier.

Several templates per class ("a {}", "a picture of a {}", ...) can be averaged into
one column - prompt ensembling, worth a few points in the CLIP paper.

The functions take an open_clip model and tokenizer, so they work the same for the
course's tiny CLIP and for a pretrained ViT-B-32. Put the model in evaluation mode
first (``model.eval()``): the course CLIP's image tower has BatchNorm layers, which
behave differently while training.
"""

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from mmlearn import checks
from mmlearn.clip import to_model_input
from mmlearn.config import model_device
from mmlearn.shapes import with_articles


def plain_prompt(classname: str) -> str:
    """The plain prompt of a class: ``"red circle"`` -> ``"a red circle"`` (``"an orange ..."``)."""
    return with_articles(f"a {classname}")


PLAIN_TEMPLATES: tuple[Callable[[str], str], ...] = (plain_prompt,)


def _prompts(classname: str, templates: Sequence[str | Callable[[str], str]]) -> list[str]:
    return [t.format(classname) if isinstance(t, str) else t(classname) for t in templates]


def _check_classes(classnames, templates, name: str = "labels") -> tuple[list[str], list]:
    """Class names and templates checked (see ``mmlearn.checks``): a list of visible,
    distinct names (a lone string would be read letter by letter) and a list of templates
    with exactly one ``{}`` each (without it every class gets the same prompt)."""
    classnames = [label.strip() for label in checks.texts(classnames, name, "red circle")]
    checks.distinct(classnames, name)
    return classnames, checks.templates(templates)


@torch.no_grad()
def build_classifier(model, tokenizer, classnames: Sequence[str],
                     templates: Sequence[str | Callable[[str], str]] = PLAIN_TEMPLATES,
                     device: str | torch.device | None = None) -> torch.Tensor:
    """Classifier weights, ``[embed_dim, n_classes]``: one unit-length column per class.

    Each template is a format string (``"a photo of a {}"``) or a function of the class
    name. A class's column is the mean of its normalised prompt embeddings, normalised
    again - the same recipe (and the same numbers) as open_clip's
    ``build_zero_shot_classifier``. The tokens go to ``device``, by default the model's,
    and the classifier comes back on it.
    """
    classnames, templates = _check_classes(classnames, templates, "classnames")
    device = model_device(model) if device is None else device
    columns = []
    for classname in classnames:
        tokens = tokenizer(_prompts(classname, templates)).to(device)
        embeddings = F.normalize(model.encode_text(tokens), dim=-1)  # one row per template
        columns.append(F.normalize(embeddings.mean(dim=0), dim=-1))
    return torch.stack(columns, dim=1)


@torch.no_grad()
def predict_proba(model, images: torch.Tensor, classifier: torch.Tensor,
                  batch_size: int = 512) -> torch.Tensor:
    """Class probabilities for preprocessed images: softmax(logit_scale * cosine similarity).

    Each batch runs on the model's device; the probabilities (N x C) come back on the CPU.
    """
    device = model_device(model)
    probabilities = []
    for start in range(0, len(images), batch_size):
        features = F.normalize(model.encode_image(images[start:start + batch_size].to(device)),
                               dim=-1)
        logits = model.logit_scale.exp() * features @ classifier.to(device, features.dtype)
        probabilities.append(logits.softmax(dim=-1).cpu())
    return torch.cat(probabilities)


def accuracy(model, tokenizer, images: torch.Tensor, labels: torch.Tensor,
             classnames: Sequence[str],
             templates: Sequence[str | Callable[[str], str]] = PLAIN_TEMPLATES) -> float:
    """Top-1 zero-shot accuracy on preprocessed images with integer labels into ``classnames``."""
    if len(images) != len(labels):
        raise ValueError(f"images and labels differ in length ({len(images)} vs {len(labels)}).")
    classifier = build_classifier(model, tokenizer, classnames, templates)
    predictions = predict_proba(model, images, classifier).argmax(dim=-1)
    return (predictions == labels.cpu()).float().mean().item()


def dataset_accuracy(model, tokenizer, dataset, classnames: Sequence[str] | None = None,
                     templates: Sequence[str | Callable[[str], str]] = PLAIN_TEMPLATES) -> float:
    """Zero-shot top-1 accuracy on a ShapeWorld dataset, over all colour x shape classes.

    ``dataset`` needs ``images`` (uint8 N x 3 x H x W) and ``labels`` (indices into
    ``classnames``, by default ``shapes.CLASSES``), as ``shapes.ShapeWorld`` has.
    """
    from mmlearn import shapes

    classnames = shapes.CLASSES if classnames is None else classnames
    images = to_model_input(dataset.images, model)
    return accuracy(model, tokenizer, images, dataset.labels, classnames, templates)


# ---------------------------------------------------------------------------------------
# Lesson 02: prompts for any CLIP, label checks, top-k and the confusion matrix
# ---------------------------------------------------------------------------------------

# Templates written for ShapeWorld pictures (the course model's world) ...
SHAPEWORLD_TEMPLATES: tuple[str, ...] = (
    "a picture of a {}",
    "a {} on a dark background",
    "a drawing of a {}",
    "a {} in the picture",
    "one {}",
)
# ... and for photos (pretrained CLIPs were trained on web photos and their alt texts).
PHOTO_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a blurry photo of a {}.",
    "a close-up photo of a {}.",
    "a photo of the {}.",
    "a bright photo of a {}.",
    "a cropped photo of a {}.",
    "a good photo of a {}.",
    "art of the {}.",
)


def check_labels(labels: Sequence[str], context_length: int, tokenizer) -> list[str]:
    """Labels a learner typed, checked: a list of non-blank, distinct labels; long ones reported.

    A label longer than the text encoder's context is cut by the tokenizer (that is
    how CLIP reads long texts); we say so instead of letting it happen silently.
    """
    labels, _ = _check_classes(labels, ("{}",))
    checks.warn_if_cut(labels, tokenizer, context_length, "label")
    return labels


@torch.no_grad()
def classify(clip, images, labels: Sequence[str],
             templates: Sequence[str | Callable[[str], str]] = ("{}",)) -> torch.Tensor:
    """Zero-shot probabilities (N x C) of PIL images among ``labels``, with any ``LoadedClip``.

    Each label becomes one prompt per template; a label's embedding is the mean of
    its normalised prompt embeddings, normalised again (a single template = no ensemble).
    """
    checks.image_list(images, "images")
    templates = checks.templates(templates)
    labels = check_labels(labels, clip.context_length, clip.tokenizer)
    prompts = [p for label in labels for p in _prompts(label, templates)]
    text = clip.encode_texts(prompts).view(len(labels), len(templates), -1)
    classifier = F.normalize(text.mean(dim=1), dim=-1).T  # D x C, like build_classifier
    image_features = clip.encode_images(images)
    return (clip.logit_scale * image_features @ classifier).softmax(dim=-1)


def top_labels(probabilities: torch.Tensor, labels: Sequence[str], k: int = 3) -> list[list[tuple]]:
    """For each image, its ``k`` most probable labels as ``(label, probability)``, best first."""
    k = min(checks.integer(k, "k", minimum=1), len(labels))
    if probabilities.ndim != 2 or probabilities.shape[1] != len(labels):
        raise ValueError(f"probabilities must be N x {len(labels)} (one column per label), as "
                         f"classify returns; got shape {tuple(probabilities.shape)}.")
    values, indices = probabilities.topk(k, dim=-1)
    return [[(labels[i], round(v, 4)) for v, i in zip(row_v.tolist(), row_i.tolist())]
            for row_v, row_i in zip(values, indices)]


def confusion_matrix(predictions: torch.Tensor, targets: torch.Tensor,
                     n_classes: int) -> torch.Tensor:
    """Counts: entry ``[t, p]`` is how many images of true class t were predicted as p.

    On the CPU, whatever device the predictions come from.
    """
    matrix = torch.zeros(n_classes, n_classes, dtype=torch.long)
    matrix.index_put_((targets.long().cpu(), predictions.long().cpu()),
                      torch.ones(len(targets), dtype=torch.long), accumulate=True)
    return matrix
