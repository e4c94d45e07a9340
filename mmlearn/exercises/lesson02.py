"""Exercises of lesson 02: a zero-shot classifier is a matrix of prompt embeddings.

Q1 turns similarities into a prediction, Q2 builds an ensemble classifier from
several templates per class, Q3 reads a confusion matrix.
"""

import torch
import torch.nn.functional as F

from mmlearn.exercises.core import (
    Question,
    function_checker,
    unit_vectors,
    value_checker,
)


def _predict(image_features: torch.Tensor, classifier: torch.Tensor) -> torch.Tensor:
    return (image_features @ classifier).argmax(dim=-1)


def _ensemble(prompt_features: torch.Tensor) -> torch.Tensor:
    return F.normalize(F.normalize(prompt_features, dim=-1).mean(dim=1), dim=-1).T



q1 = Question(
    name="q1",
    variable="predict",
    checker=function_checker(_predict, [
        (unit_vectors(5, 16, seed=0), unit_vectors(16, 3, seed=1)),
        (unit_vectors(40, 32, seed=2), unit_vectors(32, 10, seed=3)),
    ]),
    hint_text="`image_features` is N x D and `classifier` is D x C: their product holds the "
              "similarity of every image to every class. Which class has the largest one?",
    solution_text="```python\ndef predict(image_features, classifier):\n"
                  "    return (image_features @ classifier).argmax(dim=-1)\n```\n"
                  "The softmax is not needed for the top-1 class: it never changes the order.",
)

q2 = Question(
    name="q2",
    variable="ensemble_classifier",
    checker=function_checker(_ensemble, [(torch.randn(3, 4, 8, generator=torch.Generator()
                                                       .manual_seed(4)),),
                                         (torch.randn(6, 2, 16, generator=torch.Generator()
                                                      .manual_seed(5)) * 3,)],
                             rtol=1e-4, atol=1e-5),
    hint_text="For each class, normalise its T prompt embeddings, average them, and normalise "
              "the average again. Then transpose so that classes are columns (D x C), like "
              "`open_clip.build_zero_shot_classifier`.",
    solution_text="```python\ndef ensemble_classifier(prompt_features):\n"
                  "    mean = F.normalize(prompt_features, dim=-1).mean(dim=1)\n"
                  "    return F.normalize(mean, dim=-1).T\n```",
)

# Rows: true class, columns: predicted class, for classes red circle / red square / blue circle.
CONFUSION = torch.tensor([[45, 5, 0],
                          [12, 38, 0],
                          [1, 0, 49]])

q3 = Question(
    name="q3",
    variable="accuracy_from_confusion",
    checker=value_checker((CONFUSION.trace() / CONFUSION.sum()).item(), rtol=1e-4),
    hint_text="The diagonal counts the images whose prediction equals their true class. "
              "Divide by the number of images.",
    solution_text="```python\naccuracy_from_confusion = (CONFUSION.trace() / CONFUSION.sum())"
                  ".item()\n```\n0.88: and the matrix also says *which* mistake dominates - "
                  "red squares taken for red circles, a shape confusion, never a colour one.",
)
