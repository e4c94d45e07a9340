"""Comparing a learner's value with the expected one, and saying what differs.

``compare(answer, expected)`` accepts numbers (Python, NumPy, one-element tensors) within
a tolerance, arrays and tensors of the right shape, kind and values, and lists and tuples
item by item; anything else raises ``Incorrect`` with a message that names the first
difference (a shape, a type, an entry, a NaN). ``matches`` is the same as a yes/no.
"""

import decimal
import fractions
import math
import sys
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from mmlearn.exercises.verdicts import Incorrect, Malformed, NotAttempted, _short


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(
        x, (bool, np.bool_))


def _plain(x: Any) -> Any:
    """Tensors, arrays and numpy scalars inside lists turned into Python lists/numbers."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().tolist()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _as_array(x: Any) -> np.ndarray:
    """The learner's answer as a numeric numpy array, or ``Incorrect`` saying why not."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype in (torch.bfloat16, torch.float16):
            x = x.float()
        try:
            return x.numpy()
        except Exception as error:
            raise Incorrect(f"your tensor could not be read ({error}).") from None
    if isinstance(x, str):
        raise Incorrect(f"expected an array or tensor, got a string ({_short(x)}).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            array = np.asarray(_plain(x) if isinstance(x, (list, tuple)) else x)
    except (ValueError, TypeError):
        raise Incorrect("your answer is a ragged list: its rows do not all have the same "
                        "length, so it is not an array. Check how each row is built.") from None
    if array.dtype.kind in "US":
        raise Incorrect("your answer holds strings, not numbers (remove the quotes).")
    if array.dtype.kind == "O":
        try:
            array = array.astype(float)
        except (ValueError, TypeError):
            raise Incorrect("your answer holds things that are not numbers (or rows of "
                            "different lengths); expected an array of numbers.") from None
    if array.dtype.kind == "c":
        raise Incorrect("your answer holds complex numbers; expected real numbers.")
    return array


def _compare_arrays(answer: Any, expected: Any, rtol: float, atol: float) -> None:
    if not isinstance(answer, (torch.Tensor, np.ndarray, np.generic, list, tuple)):
        raise Incorrect(f"expected an array or tensor, got a {type(answer).__name__}.")
    got, want = _as_array(answer), _as_array(expected)
    if got.shape != want.shape:
        raise Incorrect(f"the shape should be {tuple(want.shape)}, but yours is "
                        f"{tuple(got.shape)}.")
    if got.dtype.kind != want.dtype.kind and not (got.dtype.kind in "fiu"
                                                  and want.dtype.kind in "fiu"):
        raise Incorrect(f"the values should be of kind {want.dtype}, yours are {got.dtype}.")
    got, want = got.astype(float), want.astype(float)  # bool arrays cannot be subtracted
    with np.errstate(all="ignore"):
        nan = np.isnan(got) & ~np.isnan(want)
        if nan.any():
            raise Incorrect(f"{int(nan.sum())} of {nan.size} values are not a number (NaN): "
                            f"look for a division by zero or the log of a negative number.")
        close = np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
        if close.all():
            return
        wrong = ~close
        message = f"the shape is right, but {int(wrong.sum())} of {wrong.size} values are off"
        finite = wrong & np.isfinite(got) & np.isfinite(want)
        if finite.any():
            message += f" (largest difference {np.abs(got - want)[finite].max():.3g})"
        elif (wrong & np.isinf(got)).any():
            message += " (some of yours are infinite)"
        raise Incorrect(message + ".")


def _compare_numbers(answer: Any, expected: Any, rtol: float, atol: float) -> None:
    if isinstance(answer, torch.Tensor) and answer.numel() == 1:
        answer = answer.detach().cpu().reshape(()).item()
    if isinstance(answer, np.ndarray) and answer.size == 1:
        answer = answer.reshape(()).item()
    if isinstance(answer, np.generic):
        answer = answer.item()
    if isinstance(answer, str):
        raise Malformed(f"expected a number, got a string ({_short(answer)}): remove the quotes.")
    if isinstance(answer, (fractions.Fraction, decimal.Decimal)):
        try:  # exact types of the standard library: their value is the number
            answer = float(answer)
        except OverflowError:
            raise Incorrect("your answer is far too large or too small.") from None
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        raise Malformed(f"expected a number, got {_short(answer, 40)} "
                        f"(a {type(answer).__name__}).")
    if isinstance(answer, int) and abs(answer) > sys.float_info.max:
        raise Incorrect(f"your answer has {len(str(abs(answer)))} digits: far too "
                        f"{'large' if answer > 0 else 'small'}.")
    if math.isnan(answer):
        raise Malformed("your answer is not a number (NaN): look for a division by zero or "
                        "a computation on an empty list.")
    if math.isinf(answer):
        raise Incorrect(f"your answer is {'' if answer > 0 else 'minus '}infinity.")
    if not math.isclose(answer, float(expected), rel_tol=rtol, abs_tol=atol):
        direction = "too large" if answer > expected else "too small"
        raise Incorrect(f"{answer:.6g} is {direction}.")


def _compare(answer: Any, expected: Any, rtol: float, atol: float) -> None:
    if isinstance(expected, (torch.Tensor, np.ndarray)):
        if _is_number(answer) and _as_array(expected).ndim == 0:
            _compare_numbers(answer, _as_array(expected).item(), rtol, atol)
        else:
            _compare_arrays(answer, expected, rtol, atol)
        return
    if isinstance(expected, (bool, np.bool_)):
        if isinstance(answer, torch.Tensor) and answer.numel() == 1 \
                and answer.dtype == torch.bool:
            answer = answer.item()
        if not isinstance(answer, (bool, np.bool_)):
            raise Incorrect(f"expected True or False, got {_short(answer, 40)}.")
        if bool(answer) != bool(expected):
            raise Incorrect(f"{bool(answer)!r} is not right; think again about the question.")
        return
    if _is_number(expected):
        _compare_numbers(answer, expected, rtol, atol)
        return
    if isinstance(expected, str):
        if not isinstance(answer, str):
            raise Incorrect(f"expected a string, got a {type(answer).__name__}.")
        if answer != expected:
            if answer.strip() == expected:
                raise Incorrect(f"{_short(answer)} has spaces around it; strip them.")
            raise Incorrect(f"{_short(answer)} is not what we are looking for.")
        return
    if isinstance(expected, (list, tuple)):
        if isinstance(answer, (torch.Tensor, np.ndarray)):
            answer = _plain(answer)
        if not isinstance(answer, (list, tuple)):
            raise Incorrect(f"expected a list of {len(expected)} items, got a "
                            f"{type(answer).__name__}.")
        if len(answer) != len(expected):
            raise Incorrect(f"it should hold {len(expected)} items, yours holds {len(answer)}.")
        for i, (a, e) in enumerate(zip(answer, expected), start=1):
            if a is None and e is not None:
                raise Incorrect(f"item {i} (of {len(expected)}) is None.")
            try:
                _compare(a, e, rtol, atol)
            except Incorrect as wrong:
                raise Incorrect(f"item {i} (of {len(expected)}): {wrong}") from None
        return
    if isinstance(expected, Mapping):
        if not isinstance(answer, Mapping):
            raise Incorrect(f"expected a dictionary, got a {type(answer).__name__}.")
        missing = [k for k in expected if k not in answer]
        extra = [k for k in answer if k not in expected]
        if missing or extra:
            raise Incorrect(f"the keys are not right (missing {len(missing)}, "
                            f"{len(extra)} too many).")
        for key in expected:
            try:
                _compare(answer[key], expected[key], rtol, atol)
            except Incorrect as wrong:
                raise Incorrect(f"at key {_short(key, 30)}: {wrong}") from None
        return
    if isinstance(expected, (set, frozenset)) and isinstance(answer, (list, tuple)):
        answer = set(answer)
    try:
        equal = bool(answer == expected)
    except Exception:  # e.g. an array compared with a set
        equal = False
    if not equal:
        raise Incorrect(f"{_short(answer)} is not what we are looking for.")


def compare(answer: Any, expected: Any, rtol: float = 1e-4, atol: float = 1e-6) -> None:
    """Raise ``Incorrect`` with a teaching message unless ``answer`` matches ``expected``.

    Numbers are compared with tolerances (NaN is "not a number", never "too small");
    arrays and tensors by shape, dtype kind (integer, float, bool) and values (a list
    of numbers counts as an array; a ragged or object list gets a message); lists and
    tuples item by item (a list for a tuple is fine); dictionaries key by key;
    everything else with ``==``. ``None`` or ``...`` is "not attempted".
    """
    if answer is None or answer is Ellipsis:
        raise NotAttempted()
    _compare(answer, expected, rtol, atol)


def matches(answer: Any, expected: Any, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    """Whether ``compare`` accepts ``answer``: for a checker that tells which known
    mistake an answer made (any answer it cannot read is simply not a match)."""
    try:
        compare(answer, expected, rtol=rtol, atol=atol)
        return True
    except Exception:  # Incorrect, NotAttempted, or an answer compare cannot read
        return False


# -- checkers -------------------------------------------------------------------------
