"""Exercises of lesson 02: a zero-shot classifier is a matrix of prompt embeddings.

Q1 (build, 3 points): ``zero_shot_classifier(encode_texts, class_names, templates)``, the
D x C matrix whose column c is the ensemble of class c's prompts. Checked against
``zeroshot.build_classifier`` (which gives open_clip's numbers) on class names, templates
and a made-up text encoder drawn afresh at every check.
Q2 (build, 3 points): ``zero_shot_probabilities(image_features, classifier, logit_scale)``,
softmax(scale * cosine similarity), checked against ``zeroshot.class_probabilities`` on fresh
random embeddings. The lesson measures every classifier of its tables with the learner's
two functions (the library's while they do not pass yet); the prediction is the argmax.
Q3 (templates, 2 points): templates for a classifier whose class names are the shapes
alone ("circle"), measured by the check on 2,000 pictures of held-out colour x shape
combinations: they must beat the best of the templates the lesson shows by 2 points
(0.955 + 0.02 = 0.975; the six-colour ensemble reaches 0.988).
Q4 (predict, 1 point): does the course CLIP know which colour goes with which shape?
Four choices, each with a line of why.

The builds refuse the library functions that would do the work (``forbidden``).
"""

import math

import open_clip
import torch
import torch.nn.functional as F

from mmlearn import shapes, zeroshot
from mmlearn.clip import to_model_input
from mmlearn.exercises.core import (
    Incorrect,
    Question,
    check_cases,
    choice_checker,
    fresh_generator,
)

RTOL, ATOL = 1e-4, 1e-5



def _randint(generator: torch.Generator, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high`` (both included)."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def _pick(generator: torch.Generator, pool: tuple, n: int) -> list:
    return [pool[i] for i in torch.randperm(len(pool), generator=generator)[:n].tolist()]


# -- Q1: the classifier from class names and templates --------------------------------

ADJECTIVES = ("teal", "amber", "striped", "tiny", "wooden", "frozen", "silver", "sleepy",
              "crimson", "paper", "velvet", "rusty")
NOUNS = ("kite", "owl", "teapot", "lantern", "cactus", "violin", "robot", "anchor", "comet",
         "glove", "kettle", "walrus")
TEMPLATE_POOL = ("a {}", "a photo of a {}.", "a drawing of the {}", "{} on a table",
                 "art of a {}", "a blurry photo of a {}", "itap of a {}", "a {} in the dark",
                 "one {}", "the {}, seen from above", "a close-up of a {}", "{}")


class MadeUpTextEncoder:
    """A text encoder for the check: one fixed random embedding per prompt it knows.

    Called like ``clip.encode_texts``: a list of texts in, one row per text out (N x D).
    Unlike ``clip.encode_texts`` the rows are not of length 1: lengths go from 0.1 to 10,
    so that a classifier that averages before normalising is caught. A text that is no
    class name put into a template is refused with a message.
    """

    def __init__(self, prompts: list[str], dim: int, generator: torch.Generator):
        self.rows = {prompt: i for i, prompt in enumerate(prompts)}
        directions = F.normalize(torch.randn(len(prompts), dim, generator=generator), dim=-1)
        lengths = 10 ** (torch.rand(len(prompts), 1, generator=generator) * 2 - 1)
        self.table = directions * lengths

    def __call__(self, texts) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        unknown = [t for t in texts if t not in self.rows]
        if unknown:
            raise ValueError(f"the text encoder was given {unknown[0]!r}, which is not one of "
                             f"the templates filled with one of the class names")
        return self.table[[self.rows[t] for t in texts]].clone()

    # The same table as an open_clip-like model and tokenizer, for the library's reference.
    def tokenize(self, prompts: list[str]) -> torch.Tensor:
        return torch.tensor([[self.rows[p]] for p in prompts])

    def as_model(self) -> torch.nn.Module:
        return _TableModel(self.table)


class _TableModel(torch.nn.Module):
    """A made-up encoder's table with open_clip's ``encode_text(tokens, normalize=False)``."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = torch.nn.Parameter(table.clone(), requires_grad=False)

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        rows = self.table[tokens[:, 0]]
        return F.normalize(rows, dim=-1) if normalize else rows


def _classifier_cases(generator: torch.Generator) -> list[tuple]:
    """Class names, templates and an encoder, drawn afresh; one case with one template."""
    cases = []
    for n_templates in (1, _randint(generator, 3, 5), _randint(generator, 2, 4)):
        n_classes = _randint(generator, 2, 6)
        names = [f"{a} {n}" for a, n in zip(_pick(generator, ADJECTIVES, n_classes),
                                            _pick(generator, NOUNS, n_classes))]
        # The first, one-template case never uses the bare "{}": there, name.format(template)
        # would give the right prompt by chance, and that mistake must fail on case 1.
        pool = TEMPLATE_POOL if n_templates > 1 else tuple(t for t in TEMPLATE_POOL if t != "{}")
        templates = _pick(generator, pool, n_templates)
        prompts = [t.format(name) for name in names for t in templates]
        dim = _randint(generator, 8, 16)  # more than the classes: D x C is never C x D
        cases.append((MadeUpTextEncoder(prompts, dim, generator), names, templates))
    return cases


def _library_classifier(encode_texts: MadeUpTextEncoder, class_names, templates) -> torch.Tensor:
    """The expected matrix: ``zeroshot.build_classifier`` on the made-up encoder's table."""
    return zeroshot.build_classifier(encode_texts.as_model(), encode_texts.tokenize,
                                     class_names, templates, device="cpu")


def _classifier_mistakes(encode_texts: MadeUpTextEncoder, class_names, templates) -> list:
    raw = encode_texts([t.format(n) for n in class_names for t in templates])
    raw = raw.view(len(class_names), len(templates), -1)            # C x T x D
    unit = F.normalize(raw, dim=-1)
    right = F.normalize(unit.mean(dim=1), dim=-1).T
    return [
        (right.T, "there is one row per class; the classifier has one *column* per class "
                  "(D x C), so that image_features (N x D) @ classifier gives N x C scores."),
        (F.normalize(raw.mean(dim=1), dim=-1).T,
         "you averaged the prompt embeddings as the encoder gave them. They are not all of "
         "the same length, so the longest one decides the average: bring each prompt "
         "embedding to length 1 first."),
        (unit.mean(dim=1).T, "the columns are averages of unit vectors, which are shorter "
                             "than 1: bring each column to length 1 again."),
        (raw.mean(dim=1).T, "you averaged the raw prompt embeddings and never brought "
                            "anything to length 1."),
        (_template_first(encode_texts, class_names, templates),
         "your prompts are listed template by template, but your reshape reads them class by "
         "class, so each column mixes prompts of several classes. Fill the prompts in the "
         "order your reshape expects (or reshape in the order you filled them)."),
        (F.normalize(unit.mean(dim=0), dim=-1).T,
         "you averaged over the classes; average over the templates of each class."),
    ]


def _template_first(encode_texts, class_names, templates) -> torch.Tensor:
    """The prompt-order mistake: prompts listed template-first, reshaped class-first."""
    raw = encode_texts([t.format(n) for t in templates for n in class_names])
    unit = F.normalize(raw, dim=-1).view(len(class_names), len(templates), -1)
    return F.normalize(unit.mean(dim=1), dim=-1).T


def _check_classifier(fn) -> None:
    check_cases(fn, _library_classifier, _classifier_cases(fresh_generator()),
                _classifier_mistakes, rtol=RTOL, atol=ATOL)


q1 = Question(
    name="q1",
    variable="zero_shot_classifier",
    checker=_check_classifier,
    hint_text="A class's column is the average *direction* of its prompts: each prompt "
              "counts the same whatever length the encoder gives it, and the average is a "
              "direction too. Encode all C*T prompts in one call (much faster than one per "
              "class), and keep track of which rows belong to which class: the order in which "
              "you fill the templates decides how a reshape groups them. Which way round must "
              "the matrix be for image_features @ classifier to give N x C?",
    solution_text="```python\ndef zero_shot_classifier(encode_texts, class_names, templates):\n"
                  "    prompts = [template.format(name) for name in class_names "
                  "for template in templates]\n"
                  "    embeddings = F.normalize(encode_texts(prompts), dim=-1)  # C*T x D\n"
                  "    embeddings = embeddings.view(len(class_names), len(templates), -1)\n"
                  "    return F.normalize(embeddings.mean(dim=1), dim=-1).T     # D x C\n"
                  "```",
    time_limit=30.0,
    points=3,
    forbidden=(zeroshot.build_classifier, zeroshot.classify, zeroshot.accuracy,
               zeroshot.dataset_accuracy, open_clip.build_zero_shot_classifier,
               open_clip.build_zero_shot_classifier_legacy, _library_classifier),
)


# -- Q2: probabilities of the classes for image embeddings ------------------------------

def _library_probabilities(image_features, classifier, logit_scale) -> torch.Tensor:
    return zeroshot.class_probabilities(image_features, classifier, logit_scale)


def _probability_cases(generator: torch.Generator) -> list[tuple]:
    """Image embeddings of any length (0.3 to 3), unit classifier columns, a scale."""
    cases = []
    for scale in (1.0, float(_randint(generator, 5, 30)), float(_randint(generator, 50, 100))):
        n_classes, dim = _randint(generator, 2, 6), _randint(generator, 4, 12)
        n_images = n_classes + _randint(generator, 1, 5)  # never square: N x C is not C x N
        lengths = 10 ** (torch.rand(n_images, 1, generator=generator) - 0.5)
        features = F.normalize(torch.randn(n_images, dim, generator=generator), dim=-1) * lengths
        classifier = F.normalize(torch.randn(dim, n_classes, generator=generator), dim=0)
        cases.append((features, classifier, scale))
    return cases


def _probability_mistakes(image_features, classifier, logit_scale) -> list:
    unit = F.normalize(image_features, dim=-1)
    return [
        ((logit_scale * image_features @ classifier).softmax(dim=-1),
         "the image embeddings are not all of length 1 here, so your scores are not cosine "
         "similarities: bring each image embedding to length 1 first."),
        ((unit @ classifier).softmax(dim=-1),
         "the scores go through the softmax without the model's scale; multiply them by "
         "`logit_scale` first (it sets how sure the probabilities are)."),
        ((logit_scale * unit @ classifier).softmax(dim=0),
         "each column sums to 1; the probabilities of one image (one row) should sum to 1: "
         "which dimension does your softmax run over?"),
        (logit_scale * (unit @ classifier).softmax(dim=-1),
         "multiply the scores by the scale *before* the softmax; after it, the rows no "
         "longer sum to 1."),
        ((math.exp(logit_scale) * unit @ classifier).softmax(dim=-1),
         "you exponentiated the scale. `logit_scale` is already the scale s = exp(t) "
         "(`course.logit_scale`, about 26); only open_clip's `model.logit_scale` holds its "
         "logarithm t. Multiply by `logit_scale` as it is."),
        (logit_scale * unit @ classifier,
         "these are the scaled scores (logits); a softmax over the classes turns them into "
         "probabilities."),
        ((unit @ classifier).argmax(dim=-1),
         "these are the predicted classes; return the probabilities, one row of C per image "
         "(the lesson takes their argmax itself)."),
    ]


def _check_probabilities(fn) -> None:
    check_cases(fn, _library_probabilities, _probability_cases(fresh_generator()),
                _probability_mistakes, rtol=RTOL, atol=ATOL)


q2 = Question(
    name="q2",
    variable="zero_shot_probabilities",
    checker=_check_probabilities,
    hint_text="An image and a class compare by cosine similarity, and the classifier's "
              "columns already have length 1; the image embeddings may not. The scale sharpens "
              "the scores before they become probabilities, and the probabilities of one "
              "image, one row, sum to 1 over the classes.",
    solution_text="```python\ndef zero_shot_probabilities(image_features, classifier, "
                  "logit_scale):\n"
                  "    similarities = F.normalize(image_features, dim=-1) @ classifier  # N x C\n"
                  "    return (logit_scale * similarities).softmax(dim=-1)\n```",
    time_limit=30.0,
    points=3,
    forbidden=(zeroshot.predict_proba, zeroshot.class_probabilities, zeroshot.classify,
               zeroshot.accuracy, zeroshot.dataset_accuracy, _library_probabilities),
)


# -- Q3: templates for a classifier of shapes, measured on held-out combinations ---------

SHAPE_NAMES: tuple[str, ...] = tuple(shapes.SHAPES)  # the class names: "circle", "square", ...
LESSON_TEMPLATES: dict[str, list[str]] = {  # the rows the lesson shows before the question
    "the shape alone ('circle')": ["{}"],
    "one template ('a circle')": ["a {}"],
    "one template ('a picture of a circle')": ["a picture of a {}"],
    f"ensemble of {len(zeroshot.SHAPEWORLD_TEMPLATES)} ShapeWorld templates":
        list(zeroshot.SHAPEWORLD_TEMPLATES),
}
MARGIN = 0.02  # two points of accuracy: 40 pictures of the 2,000, well above their noise
CHECK_PICTURES = 2000
CHECK_SEED = 2024  # other pictures than the lesson's table (seed 123)
MAX_TEMPLATES = 40

_MEASURE: dict = {}


def _check_pictures() -> tuple:
    """The course CLIP (its own copy, on the CPU) and the check's pictures, embedded once."""
    if not _MEASURE:
        from mmlearn.clip import load_clip

        clip = load_clip("course", "cpu", verbose=False)
        clip.model.eval()
        data = shapes.ShapeWorld(CHECK_PICTURES, "test_unseen", seed=CHECK_SEED)
        with torch.no_grad():
            features = clip.encode_images(to_model_input(data.images, clip.model))
        shape_of = torch.tensor([SHAPE_NAMES.index(shapes.CLASSES[int(label)].split()[-1])
                                 for label in data.labels])
        _MEASURE.update(clip=clip, features=features, labels=shape_of)
    return _MEASURE["clip"], _MEASURE["features"], _MEASURE["labels"]


def template_accuracy(templates) -> float:
    """Accuracy of the shape classifier (class names ``SHAPE_NAMES``) built with ``templates``.

    Measured with the course CLIP on the check's 2,000 pictures of held-out colour x shape
    combinations (``test_unseen``, seed 2024): the share whose shape is predicted right.
    """
    clip, features, labels = _check_pictures()
    classifier = zeroshot.build_classifier(clip.model, clip.tokenizer, list(SHAPE_NAMES),
                                           list(templates))
    return ((features @ classifier).argmax(dim=1) == labels).float().mean().item()


def goal_accuracy() -> tuple[float, str]:
    """What Q3 asks for: the best of the lesson's templates plus ``MARGIN``, and that row."""
    best = max(LESSON_TEMPLATES, key=lambda name: template_accuracy(LESSON_TEMPLATES[name]))
    return template_accuracy(LESSON_TEMPLATES[best]) + MARGIN, best


def _check_template_form(answer) -> None:
    if isinstance(answer, str):
        raise Incorrect('expected a list of templates, e.g. ["a picture of a {}"], not a '
                        "single string.")
    if not isinstance(answer, (list, tuple)) or not answer:
        raise Incorrect("expected a non-empty list of strings, each with one {} where the "
                        "class name goes.")
    if len(answer) > MAX_TEMPLATES:
        raise Incorrect(f"{len(answer)} templates is a lot; {MAX_TEMPLATES} at most, please.")
    for i, template in enumerate(answer, start=1):
        if not isinstance(template, str):
            raise Incorrect(f"template {i} is a {type(template).__name__}, not a string.")
        if template.count("{}") != 1:
            raise Incorrect(f"template {i} ({template!r}) needs exactly one {{}} where the "
                            f"class name goes.")
        try:
            template.format("circle")
        except (IndexError, KeyError, ValueError):
            raise Incorrect(f"template {i} ({template!r}) has other braces than {{}}; "
                            f"remove them.") from None


def _check_templates(answer) -> None:
    _check_template_form(answer)
    goal, best = goal_accuracy()
    yours = template_accuracy(answer)
    if yours < goal - 1e-9:
        raise Incorrect(f"on {CHECK_PICTURES:,} pictures of held-out combinations the shape "
                        f"classifier with your templates is right on {yours:.3f}, the best of "
                        f"the lesson's rows ({best}) on {goal - MARGIN:.3f}; the goal is "
                        f"{goal:.3f} or more. What did every caption the model learned from "
                        f"say about a shape, that the class name leaves out?")


q3 = Question(
    name="q3",
    variable="my_templates",
    checker=_check_templates,
    hint_text="The course CLIP never read a shape without its colour: every training caption "
              "names one, \"a red circle\", \"there is a blue star\" and so on (read a few: "
              "`shapes.ShapeWorld(8, 'train').captions`). The classifier must not know the "
              "colour of the picture in advance. An ensemble averages prompts: what could "
              "its templates vary over? Measure any list before you check it: "
              "`template_accuracy(templates)` gives its accuracy on the check's pictures.",
    solution_text='```python\nmy_templates = [shapes.with_articles(f"a {colour} {{}}") '
                  'for colour in shapes.COLORS]\n```\n"a red {}", "a green {}", ... "an orange '
                  '{}": one template per colour. Each prompt looks like a training caption, and '
                  "their average stands for the shape in any colour (0.988 on the check's "
                  "pictures, goal 0.975). Most of the gain comes from any colour word: one colour "
                  "alone, \"a red {}\", reaches 0.977, just over the goal, and \"a green {}\" "
                  "0.965, under it; the ensemble does not depend on which colour you pick.",
    time_limit=120.0,
    points=2,
)


# -- Q4: predict, then run: which colour goes with which shape? ---------------------------

q4 = Question(
    name="q4",
    variable="prediction_swap",
    checker=choice_checker("c", "abcd", reason=True, why_not={
        "a": "that would need the caption's single vector to record which colour goes with "
             "which shape. Look at the share the cell below printed.",
        "b": "compare the share the cell below printed with a coin toss: both captions hold "
             "exactly the same words.",
        "d": "the swapped caption wins about as often as the true one, not most of the time: "
             "look at the share the cell below printed, and compare it with a coin toss.",
    }),
    hint_text="Both captions hold the same four words (two colours, two shapes), and the "
              "model never saw two objects in one picture. What would a text vector that "
              "ignored word order make of them?",
    solution_text='```python\nprediction_swap = "c: both captions hold the same words, and '
                  'the model never learned which colour goes with which shape"\n```\nAbout '
                  "half: both captions hold the same words, and the course CLIP, trained on "
                  "one object per picture, does not tell which colour goes with which shape.",
    points=1,
    predict=True,
)
