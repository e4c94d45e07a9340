"""Fixtures shared by the unit tests."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Small models: one thread is as fast as two, and much faster on a busy 2-core machine.

    Use it in a module with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def not_grading(monkeypatch):
    """Every test starts outside grading mode (a test that starts grading has it undone)."""
    from mmlearn.exercises import grading
    monkeypatch.setitem(grading._STATE, "on", False)
    monkeypatch.setitem(grading._STATE, "log", None)


# Hypothesis (tests/test_properties.py): a fixed, small, repeatable budget inside `make test`;
# MMLEARN_HYPOTHESIS=long searches many more random examples.
import os  # noqa: E402

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("mmlearn", max_examples=10, derandomize=True, deadline=None,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("mmlearn-long", max_examples=200, derandomize=False, deadline=None,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("mmlearn-long" if os.environ.get("MMLEARN_HYPOTHESIS") == "long"
                      else "mmlearn")
