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
    checks.text(classname, "classname", "red circle")
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


def _check_prompts_differ(tokenizer, classnames: list[str], templates: list,
                          context_length: int, warn: bool = True) -> None:
    """Each template's prompts still differ between classes after the tokenizer's cut;
    prompts that are cut but still differ get a warning.

    Why: a template longer than the text encoder's context pushes the label past the cut,
    so two (or all) classes get the very same tokens and the same score - silently.
    """
    for template in templates:
        prompts = [_prompts(classname, [template])[0] for classname in classnames]
        tokens = tokenizer(prompts)
        first_of_row = {}
        for classname, row in zip(classnames, tokens):
            key = tuple(row.tolist())
            if key in first_of_row:
                raise ValueError(
                    f"The template {template!r} gives {first_of_row[key]!r} and {classname!r} "
                    f"the same tokens: the text encoder reads only {context_length} tokens, "
                    f"and the label comes after them, so the classes would score alike. "
                    f"Shorten the template or put '{{}}' nearer its start.")
            first_of_row[key] = classname
        if warn:
            checks.warn_if_cut(prompts, tokenizer, context_length, "prompt")


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
    _check_prompts_differ(tokenizer, classnames, templates,
                          int(getattr(tokenizer, "context_length", 77)))
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
    _check_model_input(images, classifier)
    checks.integer(batch_size, "batch_size", minimum=1)
    device = model_device(model)
    probabilities = []
    for start in range(0, len(images), batch_size):
        features = model.encode_image(images[start:start + batch_size].to(device))
        probabilities.append(class_probabilities(features, classifier,
                                                 model.logit_scale.exp()).cpu())
    return torch.cat(probabilities)


def class_probabilities(image_features: torch.Tensor, classifier: torch.Tensor,
                        logit_scale) -> torch.Tensor:
    """softmax(logit_scale * cosine similarity): the zero-shot formula itself.

    Image embeddings [N, D] (normalised here) against a classifier [D, C] of unit columns
    (``build_classifier``) give class probabilities [N, C]; ``logit_scale`` is CLIP's
    learned temperature, already exponentiated (``model.logit_scale.exp()``).
    """
    features = F.normalize(image_features, dim=-1)
    logits = logit_scale * features @ classifier.to(features.device, features.dtype)
    return logits.softmax(dim=-1)


def _check_model_input(images, classifier) -> None:
    """Preprocessed pictures [N, 3, H, W] (see ``checks.preprocessed``) and a classifier
    [D, C] as ``build_classifier`` makes. Why: raw 0-255 pixels or NaN would give
    probabilities without an error, and a wrong shape fails deep inside the model."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = f" of shape {tuple(images.shape)}" if isinstance(images, torch.Tensor) else ""
        raise TypeError(f"images must be a preprocessed tensor N x 3 x H x W (clip."
                        f"to_model_input(uint8_images, model)); got "
                        f"{checks.describe(images)}{shape}.")
    if not len(images):
        raise ValueError("images is empty; pass at least one picture.")
    checks.preprocessed(images)
    if not isinstance(classifier, torch.Tensor) or classifier.ndim != 2:
        raise TypeError(f"classifier must be the [D, C] tensor build_classifier returns; got "
                        f"{checks.describe(classifier)}.")


def accuracy(model, tokenizer, images: torch.Tensor, labels: torch.Tensor,
             classnames: Sequence[str],
             templates: Sequence[str | Callable[[str], str]] = PLAIN_TEMPLATES) -> float:
    """Top-1 zero-shot accuracy on preprocessed images with integer labels into ``classnames``."""
    if len(images) != len(labels):
        raise ValueError(f"images and labels differ in length ({len(images)} vs {len(labels)}).")
    _check_label_indices(labels, classnames)
    classifier = build_classifier(model, tokenizer, classnames, templates)
    predictions = predict_proba(model, images, classifier).argmax(dim=-1)
    return (predictions == labels.cpu()).float().mean().item()


def _check_label_indices(labels: torch.Tensor, classnames) -> None:
    """Integer labels, each an index into ``classnames``.

    Why: a label beyond the class names can never be predicted, so the accuracy would
    come back as a number - a wrong one - instead of an error.
    """
    checks.texts(classnames, "classnames", "red circle")
    if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.ndim != 1:
        raise TypeError(f"labels must be a 1-D integer tensor of class indices (like "
                        f"ShapeWorld(...).labels); got {checks.describe(labels)}.")
    count = len(classnames) if hasattr(classnames, "__len__") else 0
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= count):
        raise ValueError(f"labels run from {int(labels.min())} to {int(labels.max())}, but "
                         f"there are {count} class names: each label must index classnames "
                         f"(0 to {count - 1}). Give one name per class, in the labels' order.")


def dataset_accuracy(model, tokenizer, dataset, classnames: Sequence[str] | None = None,
                     templates: Sequence[str | Callable[[str], str]] = PLAIN_TEMPLATES) -> float:
    """Zero-shot top-1 accuracy on a ShapeWorld dataset, over all colour x shape classes.

    ``dataset`` needs ``images`` (uint8 N x 3 x H x W) and ``labels`` (indices into
    ``classnames``, by default ``shapes.CLASSES``), as ``shapes.ShapeWorld`` has.
    """
    from mmlearn import shapes

    classnames = shapes.CLASSES if classnames is None else classnames
    if isinstance(dataset, shapes.ShapeWorld) and len(classnames) != len(shapes.CLASSES):
        raise ValueError(f"A ShapeWorld's labels number its classes in shapes.CLASSES "
                         f"({len(shapes.CLASSES)} names, in that order); classnames has "
                         f"{len(classnames)}, so label k would be scored as the wrong class. "
                         f"Leave classnames out, or give {len(shapes.CLASSES)} names in the "
                         f"order of shapes.CLASSES.")
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
    _check_prompts_differ(clip.tokenizer, labels, templates, clip.context_length,
                          warn=templates != ["{}"])  # check_labels warned about the labels
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
    n_classes = checks.integer(n_classes, "n_classes", minimum=1)
    for name, value in (("predictions", predictions), ("targets", targets)):
        checks.tensor(value, name, ndim=1, dtype="integer",
                      example="of class indices [N], e.g. probabilities.argmax(dim=1)")
        if len(value) and not 0 <= int(value.min()) <= int(value.max()) < n_classes:
            raise ValueError(f"{name} must hold class indices from 0 to {n_classes - 1} "
                             f"(n_classes={n_classes}); got values from {int(value.min())} to "
                             f"{int(value.max())}.")
    checks.same_batch({"predictions": predictions, "targets": targets})
    matrix = torch.zeros(n_classes, n_classes, dtype=torch.long)
    matrix.index_put_((targets.long().cpu(), predictions.long().cpu()),
                      torch.ones(len(targets), dtype=torch.long), accumulate=True)
    return matrix
