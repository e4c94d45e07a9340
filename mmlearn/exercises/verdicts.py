"""What a checker raises: the three verdicts a learner's answer can get before it is right.

Checkers (``mmlearn.exercises.core``) and the value comparison
(``mmlearn.exercises.compare``) both raise these; they live here so that neither module
imports the other.
"""

from typing import Any


class Incorrect(Exception):
    """Raised by a checker: the message tells the learner what is wrong."""


class Malformed(Incorrect):
    """The answer is not of the asked form (not a choice, no reason): nothing to record."""


class NotAttempted(Exception):
    """The placeholder is still in place, or the answer was never assigned."""


def _short(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception:  # a repr that fails is the learner's problem, not the check's
        text = f"<a {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
