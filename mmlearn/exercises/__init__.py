"""Exercises for every lesson: ``from mmlearn.exercises.lesson00 import q1``.

See ``core.py`` for how a question checks an answer, and for the checkers a lesson
uses: ``value_checker``, ``function_checker``, ``choice_checker``, ``behaviour_checker``;
``guard.py`` for what a build answer may not call; ``grading.py`` for grading mode.
"""

from mmlearn.exercises.core import (
    Feedback,
    Incorrect,
    Malformed,
    NotAttempted,
    NotCommitted,
    Note,
    Question,
    behaviour_checker,
    call_learner,
    choice_checker,
    fresh_generator,
    function_checker,
    value_checker,
)

__all__ = ["Feedback", "Incorrect", "Malformed", "NotAttempted", "NotCommitted", "Note",
           "Question", "behaviour_checker", "call_learner", "choice_checker",
           "fresh_generator", "function_checker", "value_checker"]
