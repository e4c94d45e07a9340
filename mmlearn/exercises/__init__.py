"""Exercises for every lesson: ``from mmlearn.exercises.lesson00 import q1``.

See ``core.py`` for how a question checks an answer, and for the checkers a lesson
uses: ``value_checker``, ``function_checker``, ``choice_checker``, ``behaviour_checker``.
"""

from mmlearn.exercises.core import (
    Feedback,
    Incorrect,
    NotAttempted,
    Note,
    Question,
    behaviour_checker,
    call_learner,
    choice_checker,
    function_checker,
    value_checker,
)

__all__ = ["Feedback", "Incorrect", "NotAttempted", "Note", "Question", "behaviour_checker",
           "call_learner", "choice_checker", "function_checker", "value_checker"]
