"""The exercise machinery: a question checks a learner's answer and says why.

In a notebook a learner writes an answer into a named variable (or function) and
calls ``q1.check()``; ``q1.hint()`` nudges, ``q1.solution()`` shows one way to do it.
Every outcome is a short message that teaches: correct, incorrect (what is wrong,
without giving the answer away), or not attempted yet. Whatever the learner hands in
(a ragged list, NaN, a string, a function that raises, hangs or takes the wrong
number of arguments) the answer is a verdict, never a traceback, and a check writes
nothing to stderr. Nothing is sent anywhere; the messages are Markdown with a
plain-text fallback.

For lesson authors, the checkers (a checker takes the answer and returns None when it
is right, or raises ``Incorrect(message)`` / ``NotAttempted()``):

``value_checker(expected, rtol=1e-4, atol=1e-6)``
    Compares a value with ``expected`` (``mmlearn.exercises.compare``): numbers with tolerances,
    arrays and tensors by shape, kind and values, lists and tuples item by item.
``function_checker(reference, cases, rtol=1e-4, atol=1e-6, time_limit=TIME_LIMIT)``
    Runs the learner's function on each case (a tuple of arguments) and compares
    with ``reference``. The reference runs first, on its own deep copy of the case;
    the learner's function gets another fresh copy, so a function that changes its
    inputs in place can neither pass nor spoil later checks. Each call is limited to
    ``time_limit`` seconds (raise it for slow exercises).
``choice_checker(correct, choices="abcd", why_not=None)``
    "Predict, then run" questions: the learner assigns one letter (``"b"``, ``" B "``
    are the same). ``why_not`` maps a wrong letter to a message that teaches.
``behaviour_checker(behaviour, time_limit=TIME_LIMIT)``
    Build exercises checked by what the function does rather than by a reference
    value: ``behaviour(run)`` calls ``run(*args)`` as often as it likes (``run``
    calls the learner's function under the time limit, turns its exceptions and
    NotImplementedError into verdicts; it does *not* copy the arguments, so build
    them inside ``behaviour``) and raises ``Incorrect`` with a teaching message.
``call_learner(fn, args, time_limit=TIME_LIMIT, copy=True)``
    The same protection for a checker written by hand.

``Question(name, variable, checker, hint_text, solution_text, time_limit=None)``
bounds a whole check (``time_limit`` seconds; by default what the checker declares,
else ``CHECK_TIME_LIMIT``).

Time limits use a daemon thread joined with a timeout (this works in Jupyter, on
Windows and outside the main thread, unlike ``signal.alarm``). Python cannot stop a
thread: a learner's function that runs forever keeps running in the background
(using CPU) until the kernel restarts; the check itself answers on time.

Build questions name the library functions that implement their answer
(``forbidden``); while the learner's function runs for the check, calling one of them
is refused and the verdict names it (see ``guard.py``). ``function_checker`` can take
a function that makes the test cases from a random generator, seeded afresh at every
check, so an answer that returns remembered numbers fails.

Predict questions (``predict=True``) are committed before they are revealed:
``check()`` records the first answer without saying whether it is right, the cell
that shows what happens starts with ``qN.reveal()`` (which refuses to go on before a
prediction is recorded), and only after it does ``check()`` give the verdict, on the
first prediction.

Grading: when a grader started the kernel in grading mode (``grading.py``), a check
that is not correct raises ``NotCorrect`` (an ``AssertionError`` shown as the verdict
alone), so that the autograder gives that test cell no points. ``points`` says what a
question is worth.
"""

import contextlib
import copy
import inspect
import io
import random
import threading
import warnings
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from mmlearn.exercises import guard
from mmlearn.exercises.compare import compare, matches
from mmlearn.exercises.grading import grading, record
from mmlearn.exercises.verdicts import Incorrect, Malformed, NotAttempted, _short

MISSING = object()
TIME_LIMIT = 5.0  # seconds for one call of a learner's function
CHECK_TIME_LIMIT = 60.0  # seconds for a whole check whose checker declares no bound (generous:
# a checker may build its test data the first time)


class TookTooLong(Exception):
    """A call did not finish within its time limit (the thread is left running)."""


@dataclass
class Feedback:
    """The outcome of a check, shown as Markdown in Jupyter and as text elsewhere."""

    status: str  # "correct", "incorrect", "not attempted" or "recorded" (a prediction)
    message: str
    well_formed: bool = True  # False: the answer is not of the asked form at all

    _MARKS = {"correct": "✅ Correct", "incorrect": "❌ Not yet",
              "not attempted": "✍️ Not attempted", "recorded": "📝 Recorded"}

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    def __repr__(self) -> str:
        return f"{self._MARKS[self.status]}: {self.message}"

    def _repr_markdown_(self) -> str:
        return f"**{self._MARKS[self.status]}**: {self.message}"


class NotCorrect(AssertionError):
    """Raised by ``Question.check`` in grading mode; IPython shows only the verdict."""

    def __init__(self, feedback: Feedback):
        super().__init__(repr(feedback))
        self.feedback = feedback

    def _render_traceback_(self) -> list[str]:
        return [repr(self.feedback)]


# The watch of the check that is running (checks run one at a time, each in its thread).
_ACTIVE_WATCH: list[guard.Watch] = []


def fresh_generator() -> torch.Generator:
    """A generator seeded afresh for one check: test inputs no answer can know in advance."""
    return torch.Generator().manual_seed(random.SystemRandom().randrange(2**62))


# -- running the learner's code ---------------------------------------------------------

def _sentence(text: str, limit: int = 200) -> str:
    """An error message cut to ``limit`` characters and ended with a full stop."""
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return text if text.endswith((".", "!", "?")) else text + "."


def fresh(value: Any) -> Any:
    """A deep copy of a test input (tensors that refuse ``deepcopy`` are cloned)."""
    try:
        return copy.deepcopy(value)
    except Exception:
        if isinstance(value, torch.Tensor):
            return value.detach().clone().requires_grad_(value.requires_grad)
        if isinstance(value, (list, tuple)):
            return type(value)(fresh(v) for v in value)
        if isinstance(value, dict):
            return {k: fresh(v) for k, v in value.items()}
        return value


def run_with_time_limit(fn: Callable, args: tuple = (), kwargs: dict | None = None,
                        time_limit: float | None = TIME_LIMIT,
                        watch: guard.Watch | None = None, learner: bool = False) -> Any:
    """``fn(*args, **kwargs)`` in a daemon thread; ``TookTooLong`` after ``time_limit`` s.

    Exceptions of ``fn`` are raised again here. On a timeout the thread cannot be
    stopped: it keeps running in the background until it ends or the process does.
    ``learner=True`` runs ``fn`` as a learner's code: under ``watch`` (forbidden
    calls refused) and with any library function it replaces put back afterwards.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            if learner:
                outcome["value"] = guard.guarded_call(fn, args, kwargs or {}, watch)
            else:
                outcome["value"] = fn(*args, **(kwargs or {}))
        except BaseException as error:  # handed to the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=target, name="mmlearn-check", daemon=True)
    thread.start()
    thread.join(time_limit)
    if thread.is_alive():
        raise TookTooLong(time_limit)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _arity_problem(fn: Callable, n_args: int, kwargs: dict | None = None,
                   reference: Callable | None = None) -> str | None:
    """A message when ``fn`` cannot be called with ``n_args`` positional arguments."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None  # a builtin without a signature: just call it
    try:
        signature.bind(*range(n_args), **dict.fromkeys(kwargs or {}))
        return None
    except TypeError:
        pass
    names = ""
    if reference is not None:
        try:
            params = [p.name.lstrip("_") for p in inspect.signature(reference).parameters.values()]
            if len(params) >= n_args:
                names = f" ({', '.join(params[:n_args])})"
        except (TypeError, ValueError):
            pass
    positional = [p for p in signature.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    takes = (f"{len(required)} to {len(positional)}" if len(required) != len(positional)
             else str(len(positional)))
    plural = "s" if n_args != 1 else ""
    return (f"your function should take {n_args} argument{plural}{names}, "
            f"but yours takes {takes}.")


def call_learner(fn: Any, args: tuple = (), kwargs: dict | None = None, *,
                 time_limit: float | None = TIME_LIMIT, copy: bool = True,
                 reference: Callable | None = None, case: str = "") -> Any:
    """Call the learner's ``fn`` safely and return its result, or raise a verdict.

    The arguments are deep-copied first (``copy=False`` to pass them as they are).
    Wrong number of arguments, an exception, ``NotImplementedError`` (the
    placeholder) and a call longer than ``time_limit`` seconds become ``Incorrect``
    or ``NotAttempted`` with a message; ``case`` (e.g. "on test case 2 ") prefixes it.
    """
    if not callable(fn):
        raise Incorrect(f"expected a function, got a {type(fn).__name__}.")
    problem = _arity_problem(fn, len(args), kwargs, reference=reference)
    if problem:
        raise Incorrect(problem)
    if copy:
        args, kwargs = fresh(args), fresh(kwargs)
    watch = guard.Watch(_ACTIVE_WATCH[-1].forbidden) if _ACTIVE_WATCH else None
    try:
        result = run_with_time_limit(fn, args, kwargs, time_limit, watch=watch, learner=True)
    except guard.LibraryChanged as changed:
        raise Incorrect(f"{case}{changed}") from None
    except TookTooLong:
        _refuse_delegation(watch, case)
        raise Incorrect(f"{case}your function took too long (more than {time_limit:g} s); "
                        f"is there a loop that never ends? (It may still be running in the "
                        f"background: restart the kernel if the notebook feels slow.)") from None
    except NotImplementedError:
        _refuse_delegation(watch, case)
        raise NotAttempted() from None
    except BaseException as error:  # the learner's bug, reported as feedback
        _refuse_delegation(watch, case)
        raise Incorrect(f"{case}your function raised {type(error).__name__}: "
                        f"{_sentence(error)}") from None
    _refuse_delegation(watch, case)
    return result


def _refuse_delegation(watch: guard.Watch | None, case: str) -> None:
    """``Incorrect`` when the learner's code called a forbidden function (even if caught)."""
    message = watch.verdict() if watch is not None else None
    if message:
        raise Incorrect(f"{case}{message}")


# -- comparing values -----------------------------------------------------------------

def value_checker(expected: Any, rtol: float = 1e-4, atol: float = 1e-6) -> Callable:
    """A checker that compares the learner's value with ``expected`` (see ``compare``)."""
    def check(answer: Any) -> None:
        compare(answer, expected, rtol=rtol, atol=atol)
    return check


def function_checker(reference: Callable, cases: list[tuple] | Callable, rtol: float = 1e-4,
                     atol: float = 1e-6, time_limit: float = TIME_LIMIT) -> Callable:
    """A checker that runs the learner's function on each case and compares with ``reference``.

    ``cases`` is a list of argument tuples, or a function ``cases(generator)`` that
    makes that list from a ``torch.Generator`` seeded afresh at every check (so a
    function that returns numbers it remembers fails). For each case the reference
    runs first on its own deep copy, then the learner's function on a fresh copy,
    within ``time_limit`` seconds. The message names the failing case and what went
    wrong, not the expected output.
    """
    fixed = None if callable(cases) else tuple(cases)  # a tuple: no cell can empty it

    def check(fn: Any) -> None:
        if not callable(fn):
            raise Incorrect(f"expected a function, got a {type(fn).__name__}.")
        these = fixed if fixed is not None else cases(fresh_generator())
        for i, args in enumerate(these, start=1):
            expected = reference(*fresh(args))
            got = call_learner(fn, args, time_limit=time_limit, reference=reference,
                               case=f"on test case {i} ")
            if got is None and expected is None:
                continue  # a reference that returns nothing: only the return is checked here
            if got is None:
                raise Incorrect(f"on test case {i} your function returned None: "
                                f"did you forget `return`?")
            try:
                compare(got, expected, rtol=rtol, atol=atol)
            except NotAttempted:
                raise Incorrect(f"on test case {i} your function returned {_short(got)}.") \
                    from None
            except Incorrect as wrong:
                raise Incorrect(f"on test case {i} (of {len(these)}): {wrong}") from None
    n_cases = len(fixed) if fixed is not None else len(cases(torch.Generator().manual_seed(0)))
    check.time_limit = time_limit * n_cases + CHECK_TIME_LIMIT
    return check


def check_cases(fn: Any, reference: Callable, cases: list[tuple], mistakes: Callable,
                first_look: Callable | None = None, last_look: Callable | None = None,
                rtol: float = 1e-4, atol: float = 1e-6) -> None:
    """Run ``fn`` on every case next to ``reference``; name a known mistake when it fits.

    ``mistakes(*args)`` returns ``[(value a mistaken answer gives, message), ...]``;
    ``first_look(got, *args)`` may return a message before the values are compared, and
    ``last_look(got, *args)`` one when the values are wrong and no listed mistake fits.
    """
    if not callable(fn):
        raise Incorrect(f"expected a function, got a {type(fn).__name__}.")
    for number, args in enumerate(cases, start=1):
        expected = reference(*args)
        where = f"on test case {number} (of {len(cases)}): "
        got = call_learner(fn, args, reference=reference, case=f"on test case {number} ")
        if got is None:
            raise Incorrect(f"{where}your function returned None: did you forget `return`?")
        message = first_look(got, *args) if first_look else None
        if message:
            raise Incorrect(where + message)
        if matches(got, expected, rtol, atol):
            continue
        for value, message in mistakes(*args):
            if matches(got, value, rtol, atol):
                raise Incorrect(where + message)
        message = last_look(got, *args) if last_look else None
        if message:
            raise Incorrect(where + message)
        try:
            compare(got, expected, rtol=rtol, atol=atol)
        except Incorrect as wrong:
            raise Incorrect(f"{where}{wrong}") from None
        raise Incorrect(f"{where}your function returned {type(got).__name__}, not numbers.")


MIN_REASON_WORDS = 3


def choice_checker(correct: str, choices: str = "abcd",
                   why_not: Mapping[str, str] | None = None, reason: bool = False) -> Callable:
    """A checker for "predict, then run": the learner assigns one letter among ``choices``.

    Case and spaces do not matter (``" B "`` is ``"b"``). A wrong letter gets
    ``why_not[letter]`` if given, else a nudge to run the cell and look again. With
    ``reason=True`` the letter must come with a line of reasoning after it
    (``"b: the scores differ by about one"``).
    """
    choices = [c.lower() for c in choices]
    correct = correct.strip().lower()
    if correct not in choices:
        raise ValueError(f"{correct!r} is not among the choices {choices}")
    why_not = {k.strip().lower(): v for k, v in (why_not or {}).items()}
    listed = ", ".join(f'"{c}"' for c in choices)

    def check(answer: Any) -> None:
        if answer is None or answer is Ellipsis:
            raise NotAttempted()
        if not isinstance(answer, str):
            raise Malformed(f"answer with one letter in quotes, one of {listed}; "
                            f"got {_short(answer, 40)}.")
        letter, because = _letter_and_reason(answer)
        if letter in ("", "?", "_"):
            raise NotAttempted()
        if letter not in choices:
            raise Malformed(f"{_short(answer, 40)} is not one of the choices "
                            f"{listed}.")
        if reason and len(because.split()) < MIN_REASON_WORDS:
            raise Malformed(f'add one line of why after the letter, e.g. "{letter}: because '
                            f'...". Saying why is what makes a prediction worth checking.')
        if letter != correct:
            raise Incorrect(why_not.get(letter, f'not "{letter}": run the cell below, look at '
                                                f"what happens, and think about why."))
    check.choices = choices
    return check


def _letter_and_reason(answer: str) -> tuple[str, str]:
    """``"b: because..."`` -> ``("b", "because...")``; a lone ``" (B) "`` -> ``("b", "")``."""
    text = answer.strip()
    letter = text.strip(".()").strip().lower()
    if len(letter) <= 1:
        return letter, ""
    head = text.lstrip("(").strip()
    if len(head) > 1 and head[0].isalpha() and not head[1].isalpha():
        return head[0].lower(), head[1:].lstrip(" .):-–—,;").strip()
    return letter, ""


def behaviour_checker(behaviour: Callable[[Callable], None],
                      time_limit: float = TIME_LIMIT) -> Callable:
    """A checker for a build exercise, judged by what the learner's function does.

    ``behaviour(run)`` gets ``run(*args, **kwargs)``, which calls the learner's
    function within ``time_limit`` seconds and turns its exceptions (and the
    placeholder's NotImplementedError) into a verdict. ``run`` passes the arguments
    as they are, so ``behaviour`` can look at them afterwards (gradients, in-place
    changes): build them inside ``behaviour``. ``behaviour`` raises
    ``Incorrect(message)`` when the behaviour is wrong.
    """
    def check(fn: Any) -> None:
        if not callable(fn):
            raise Incorrect(f"expected a function, got a {type(fn).__name__}.")

        def run(*args: Any, **kwargs: Any) -> Any:
            return call_learner(fn, args, kwargs, time_limit=time_limit, copy=False)
        behaviour(run)
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


def _raised_by(error: BaseException, fn: Any) -> bool:
    """Whether the learner's function ``fn`` is on the traceback of ``error``."""
    code = getattr(fn, "__code__", None)
    tb = error.__traceback__
    while code is not None and tb is not None:
        if tb.tb_frame.f_code is code:
            return True
        tb = tb.tb_next
    return False


@contextlib.contextmanager
def _quiet():
    """No warnings and nothing on stderr while checking (nbgrader fails on stderr)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stderr(io.StringIO()):
            yield


_REGISTRY: "weakref.WeakSet[Question]" = weakref.WeakSet()


def registered_questions() -> list["Question"]:
    """Every question alive (the grading watchdog compares them after each cell)."""
    return list(_REGISTRY)


class NotCommitted(Exception):
    """``reveal()`` before a prediction was recorded; IPython shows only the message."""

    def _render_traceback_(self) -> list[str]:
        return [str(self)]


@dataclass(eq=False)
class Question:
    """One exercise. ``variable`` names what the learner assigns in the notebook.

    ``forbidden``: the functions that implement the answer, refused while the learner's
    function runs for the check. ``points``: what the question is worth in grading.
    ``predict``: a prediction, committed before the cell that reveals it (see the module
    docstring). ``time_limit`` bounds a whole check in seconds (default: what the
    checker declares, else ``CHECK_TIME_LIMIT``).
    """

    name: str
    variable: str
    checker: Callable[[Any], None]
    hint_text: str
    solution_text: str
    time_limit: float | None = None
    forbidden: tuple = ()
    points: float = 1
    predict: bool = False

    def __post_init__(self) -> None:
        self.forbidden = tuple(self.forbidden)
        self._committed: Any = MISSING
        self._revealed = False
        self._solution_shown = False
        self._last: tuple[Any, bool] = (MISSING, False)
        _REGISTRY.add(self)

    def passed(self) -> bool:
        """Whether the notebook's answer passes (never raises): for a lesson's fallback,
        ``loss_fn = contrastive_loss if q2.passed() else losses.clip_loss``. The answer's
        last check is reused when the answer is the same object."""
        answer = _learner_namespace().get(self.variable, MISSING)
        if answer is MISSING:
            return False
        if self._last[0] is answer:
            return self._last[1]
        return self._feedback(answer).correct

    def check(self, answer: Any = MISSING) -> Feedback:
        """Check ``answer``, or, when called with no argument, the notebook variable."""
        graded = grading()  # read before any learner code runs: an answer cannot change it
        if answer is MISSING:
            answer = _learner_namespace().get(self.variable, MISSING)
        if self.predict and not graded and self._committed is not MISSING:
            answer = self._committed  # the first prediction is the one that counts
        feedback = self._feedback(answer)
        self._last = (answer, feedback.correct)
        if self.predict and not graded and feedback.well_formed and \
                feedback.status in ("correct", "incorrect"):
            feedback = self._commit(answer, feedback)
        if self._solution_shown and feedback.correct:
            feedback = Feedback("correct", feedback.message[:-1] + " (after `solution()`).")
        if graded and not feedback.correct:
            raise NotCorrect(feedback)
        return feedback

    def _commit(self, answer: Any, feedback: Feedback) -> Feedback:
        """A prediction: recorded first, judged only once the reveal has run."""
        if self._committed is MISSING:
            self._committed = copy.deepcopy(answer)
        if not self._revealed:
            return Feedback("recorded", f"your prediction {_short(self._committed, 60)} is "
                                        f"stored. Now run the cell below and see.")
        current = _learner_namespace().get(self.variable, MISSING)
        if current is not MISSING and _short(current) != _short(self._committed):
            note = (f" (You changed `{self.variable}` after the reveal; your first "
                    f"prediction, {_short(self._committed, 60)}, is the one checked.)")
            return Feedback(feedback.status, feedback.message + note)
        return feedback

    def reveal(self) -> None:
        """Start of the cell that shows the answer: only after a prediction is recorded."""
        if self.predict and not grading() and self._committed is MISSING:
            raise NotCommitted(f"First write your prediction in `{self.variable}` and run "
                               f"`{self.name}.check()`: the cell below shows the answer.")
        self._revealed = True

    def _feedback(self, answer: Any) -> Feedback:
        if answer is MISSING:
            return Feedback("not attempted",
                            f"assign your answer to `{self.variable}` in the cell above, "
                            f"run it, then check again.")
        if answer is None or answer is Ellipsis:  # the usual placeholders, for every checker
            return Feedback("not attempted", f"`{self.variable}` still holds the placeholder.")
        limit = self.time_limit or getattr(self.checker, "time_limit", None) or CHECK_TIME_LIMIT
        _ACTIVE_WATCH.append(guard.Watch(self.forbidden))
        try:
            with _quiet():
                run_with_time_limit(self.checker, (answer,), time_limit=limit)
        except NotAttempted:
            return Feedback("not attempted", f"`{self.variable}` still holds the placeholder.")
        except Incorrect as wrong:
            message = str(wrong).rstrip()
            if not message.endswith((".", "!", "?", ")")):
                message += "."
            return Feedback("incorrect", f"{message} Try `{self.name}.hint()` if you are stuck.",
                            well_formed=not isinstance(wrong, Malformed))
        except TookTooLong:
            return Feedback("incorrect", f"checking `{self.variable}` took too long (more than "
                                         f"{limit:g} s); is there a loop that never ends?")
        except BaseException as error:  # an answer the checker did not foresee: still a verdict
            who = "your function" if _raised_by(error, answer) else "checking your answer"
            return Feedback("incorrect", f"{who} raised {type(error).__name__}: "
                                         f"{_sentence(error)} Try `{self.name}.hint()` "
                                         f"if you are stuck.")
        finally:
            _ACTIVE_WATCH.pop()
        return Feedback("correct", f"`{self.variable}` is right.")

    def hint(self) -> "Note":
        return Note("Hint", self.hint_text)

    def solution(self) -> "Note":
        """One way to answer. The next verdict says it was shown; a grader logs it."""
        self._solution_shown = True
        record("solution", question=self.name)
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
