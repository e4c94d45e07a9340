"""Exercises of lesson 02: a zero-shot classifier is a matrix of prompt embeddings.

Q1 (build): ``ensemble_classifier``, which the lesson then uses for every classifier
it measures. Q2: the learner's own prompt templates, measured by the check on
pictures of held-out colour x shape combinations against the class name alone.
Q3 (predict, then run): does the course CLIP know which colour goes with which shape?
"""

import torch
import torch.nn.functional as F

from mmlearn.exercises.core import Incorrect, Question, choice_checker, function_checker


def _ensemble(prompt_features: torch.Tensor) -> torch.Tensor:
    return F.normalize(F.normalize(prompt_features, dim=-1).mean(dim=1), dim=-1).T


def _features(*shape: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


q1 = Question(
    name="q1",
    variable="ensemble_classifier",
    # lengths that differ from prompt to prompt: averaging without normalising first
    # lets the longest embedding decide, and that is caught
    checker=function_checker(_ensemble, [
        (_features(3, 4, 8, seed=4),),
        (_features(6, 2, 16, seed=5) * torch.tensor([1.0, 10.0]).view(1, 2, 1),),
        (_features(5, 1, 16, seed=6, scale=3.0),),  # one template: no ensemble at all
    ], rtol=1e-4, atol=1e-5),
    hint_text="`prompt_features` is C x T x D. Bring every prompt embedding to length 1 "
              "(`F.normalize` over the last dimension), average over the templates (which "
              "dimension is that?), bring each average to length 1 again, and put the "
              "classes in columns.",
    solution_text="```python\ndef ensemble_classifier(prompt_features):\n"
                  "    mean = F.normalize(prompt_features, dim=-1).mean(dim=1)\n"
                  "    return F.normalize(mean, dim=-1).T\n```",
)

# -- Q2: the learner's templates, measured on held-out combinations ---------------------

BASELINE_TEMPLATES = ["{}"]  # the class name alone: "red circle"
MARGIN = 0.01  # one point of accuracy
CHECK_PICTURES = 1000
CHECK_SEED = 2024  # other pictures than the lesson's table (seed 123)
MAX_TEMPLATES = 20

_MEASURE: dict = {}


def template_accuracy(templates) -> float:
    """Zero-shot accuracy of the course CLIP with ``templates`` on the check's pictures.

    The pictures show held-out colour x shape combinations (``test_unseen``, 1,000 of
    them, seed 2024); the classifier covers all 36 classes.
    """
    from mmlearn import shapes, zeroshot
    from mmlearn.clip import load_clip

    if not _MEASURE:
        _MEASURE["clip"] = load_clip("course")
        _MEASURE["data"] = shapes.ShapeWorld(CHECK_PICTURES, "test_unseen", seed=CHECK_SEED)
    clip = _MEASURE["clip"]
    return zeroshot.dataset_accuracy(clip.model, clip.tokenizer, _MEASURE["data"],
                                     templates=list(templates))


def _check_templates(answer) -> None:
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
            template.format("red circle")
        except (IndexError, KeyError, ValueError):
            raise Incorrect(f"template {i} ({template!r}) has other braces than {{}}; "
                            f"remove them.") from None
    if [t.strip() for t in answer] == BASELINE_TEMPLATES:
        raise Incorrect('["{}"] is the class name alone, the baseline to beat.')
    yours, baseline = template_accuracy(answer), template_accuracy(BASELINE_TEMPLATES)
    if yours < baseline + MARGIN - 1e-9:
        raise Incorrect(f"on {CHECK_PICTURES} pictures of held-out combinations your "
                        f"templates reach {yours:.3f} and the class name alone {baseline:.3f}; "
                        f"the goal is {baseline + MARGIN:.3f} or more. Which words did the "
                        f"captions the model was trained on have around the class name?")


q2 = Question(
    name="q2",
    variable="my_templates",
    checker=_check_templates,
    hint_text="The course CLIP learned from ShapeWorld captions only (look at a few: "
              "`shapes.ShapeWorld(8, 'train').captions`). A prompt that reads like those "
              "captions lands where the model expects captions; words it never saw do not "
              "help it.",
    solution_text='```python\nmy_templates = ["a {}", "a picture of a {}"]\n```\nTraining '
                  'captions start with "a" ("a red circle", "a small red circle on the '
                  'left"), so any template that puts "a" before the class name helps. Words '
                  'of other captions ("big", "in the center") describe only some pictures '
                  "and can hurt.",
    time_limit=120.0,
)

q3 = Question(
    name="q3",
    variable="prediction_swap",
    checker=choice_checker("c", "abc", why_not={
        "a": "that would need the caption's single vector to record which colour goes with "
             "which shape. Run the cell below and look.",
        "b": "run the cell below and compare with chance: both captions hold exactly the "
             "same words.",
    }),
    hint_text="Both captions hold the same four words (two colours, two shapes). What would "
              "a text vector that ignored word order make of them?",
    solution_text='```python\nprediction_swap = "c"\n```\nAbout half: both captions hold the '
                  "same words, and the course CLIP, trained on one object per picture, does "
                  "not tell which colour goes with which shape.",
)
