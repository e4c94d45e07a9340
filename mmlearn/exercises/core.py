"""The exercise machinery: a question checks a learner's answer and says why.

In a notebook a learner writes an answer into a named variable (or function) and
calls ``q1.check()``; ``q1.hint()`` nudges, ``q1.solution()`` shows one way to do it.
A check compares *values* (with tolerances for floats, and shapes and dtypes for
arrays) or runs the learner's function on test cases against a reference. Every
outcome is a short message that teaches: correct, incorrect (what is wrong, without
giving the answer away), or not attempted yet.

Nothing is sent anywhere; the messages are Markdown with a plain-text fallback.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

MISSING = object()


class Incorrect(Exception):
    """Raised by a checker: the message tells the learner what is wrong."""


class NotAttempted(Exception):
    """The placeholder is still in place, or the answer was never assigned."""


@dataclass
class Feedback:
    """The outcome of a check, shown as Markdown in Jupyter and as text elsewhere."""

    status: str  # "correct", "incorrect" or "not attempted"
    message: str

    _MARKS = {"correct": "✅ Correct", "incorrect": "❌ Not yet",
              "not attempted": "✍️ Not attempted"}

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    def __repr__(self) -> str:
        return f"{self._MARKS[self.status]}: {self.message}"

    def _repr_markdown_(self) -> str:
        return f"**{self._MARKS[self.status]}**: {self.message}"


def _as_array(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def compare(answer: Any, expected: Any, rtol: float = 1e-4, atol: float = 1e-6) -> None:
    """Raise ``Incorrect`` with a teaching message unless ``answer`` matches ``expected``.

    Numbers are compared with tolerances; arrays and tensors by shape, dtype kind
    (integer, float, bool) and values; everything else with ``==``.
    """
    if answer is None or answer is Ellipsis:
        raise NotAttempted()
    if isinstance(expected, (torch.Tensor, np.ndarray)):
        if not isinstance(answer, (torch.Tensor, np.ndarray, list, tuple)):
            raise Incorrect(f"expected an array or tensor, got a {type(answer).__name__}.")
        got, want = _as_array(answer), _as_array(expected)
        if got.shape != want.shape:
            raise Incorrect(f"the shape should be {tuple(want.shape)}, but yours is "
                            f"{tuple(got.shape)}.")
        if got.dtype.kind != want.dtype.kind and not (got.dtype.kind in "fiu"
                                                      and want.dtype.kind in "fiu"):
            raise Incorrect(f"the values should be of kind {want.dtype}, yours are {got.dtype}.")
        got, want = got.astype(float), want.astype(float)  # bool arrays cannot be subtracted
        if not np.allclose(got, want, rtol=rtol, atol=atol):
            wrong = ~np.isclose(got, want, rtol=rtol, atol=atol)
            raise Incorrect(f"the shape is right, but {int(wrong.sum())} of {wrong.size} values "
                            f"are off (largest difference {np.abs(got - want).max():.3g}).")
        return
    if isinstance(expected, bool) or isinstance(answer, bool):
        if answer != expected:
            raise Incorrect(f"{answer!r} is not right; think again about the question.")
        return
    if isinstance(expected, (int, float)):
        if isinstance(answer, torch.Tensor) and answer.numel() == 1:
            answer = answer.item()
        if isinstance(answer, np.generic):
            answer = answer.item()
        if not isinstance(answer, (int, float)):
            raise Incorrect(f"expected a number, got a {type(answer).__name__}.")
        if math.isnan(answer) or not math.isclose(answer, expected, rel_tol=rtol, abs_tol=atol):
            direction = "too large" if answer > expected else "too small"
            raise Incorrect(f"{answer:.6g} is {direction}.")
        return
    if answer != expected:
        raise Incorrect(f"{answer!r} is not what we are looking for.")


def value_checker(expected: Any, rtol: float = 1e-4, atol: float = 1e-6) -> Callable:
    """A checker that compares the learner's value with ``expected`` (see ``compare``)."""
    def check(answer: Any) -> None:
        compare(answer, expected, rtol=rtol, atol=atol)
    return check


def function_checker(reference: Callable, cases: list[tuple], rtol: float = 1e-4,
                     atol: float = 1e-6) -> Callable:
    """A checker that runs the learner's function on each case and compares with ``reference``.

    ``cases`` is a list of argument tuples. The message names the failing case and
    what the learner's function returned, not the expected output.
    """
    def check(fn: Any) -> None:
        if not callable(fn):
            raise Incorrect(f"expected a function, got a {type(fn).__name__}.")
        for i, args in enumerate(cases, start=1):
            try:
                got = fn(*args)
            except NotImplementedError:
                raise NotAttempted() from None
            except Exception as error:  # the learner's bug, reported as feedback
                raise Incorrect(f"on test case {i} your function raised "
                                f"{type(error).__name__}: {error}") from None
            try:
                compare(got, reference(*args), rtol=rtol, atol=atol)
            except NotAttempted:
                raise Incorrect(f"on test case {i} your function returned {got!r}.") from None
            except Incorrect as wrong:
                raise Incorrect(f"on test case {i} (of {len(cases)}): {wrong}") from None
    return check


def _learner_namespace() -> dict:
    """The notebook's global variables (IPython's user namespace, else ``__main__``)."""
    try:
        from IPython import get_ipython
        shell = get_ipython()
        if shell is not None:
            return shell.user_ns
    except ImportError:
        pass
    import __main__
    return vars(__main__)


@dataclass
class Question:
    """One exercise. ``variable`` names what the learner assigns in the notebook."""

    name: str
    variable: str
    checker: Callable[[Any], None]
    hint_text: str
    solution_text: str

    def check(self, answer: Any = MISSING) -> Feedback:
        """Check ``answer``, or, when called with no argument, the notebook variable."""
        if answer is MISSING:
            answer = _learner_namespace().get(self.variable, MISSING)
        if answer is MISSING:
            return Feedback("not attempted",
                            f"assign your answer to `{self.variable}` in the cell above, "
                            f"run it, then check again.")
        try:
            self.checker(answer)
        except NotAttempted:
            return Feedback("not attempted", f"`{self.variable}` still holds the placeholder.")
        except Incorrect as wrong:
            return Feedback("incorrect", f"{wrong} Try `{self.name}.hint()` if you are stuck.")
        return Feedback("correct", f"`{self.variable}` is right.")

    def hint(self) -> "Note":
        return Note("Hint", self.hint_text)

    def solution(self) -> "Note":
        return Note("Solution", self.solution_text)


@dataclass
class Note:
    """A hint or a solution: Markdown text with a title."""

    title: str
    text: str

    def __repr__(self) -> str:
        return f"{self.title}: {self.text}"

    def _repr_markdown_(self) -> str:
        return f"**{self.title}**: {self.text}"


def unit_vectors(*shape: int, seed: int) -> torch.Tensor:
    """Seeded random vectors of length 1 along the last dimension: test inputs for checkers."""
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=generator), dim=-1)
