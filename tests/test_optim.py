"""``mmlearn.optim``: the one learning-rate schedule, the weight groups, the parameter count,
and the house rule that every model's training goes through them (issue 23)."""

import re
from pathlib import Path

import pytest
import torch

from mmlearn.optim import decay_groups, parameter_count, set_learning_rate, warmup_cosine

ROOT = Path(__file__).resolve().parents[1]


def _sources(*folders: str) -> dict[str, str]:
    return {str(path.relative_to(ROOT)): path.read_text()
            for folder in folders for path in sorted((ROOT / folder).rglob("*.py"))}


def test_warm_up_then_a_cosine_landing_on_the_floor():
    """Warm-up rises linearly to the peak, the cosine lands on floor x peak at the end."""
    assert warmup_cosine(0, 100, 1.0, 10) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, 1.0, 10) == pytest.approx(1.0)
    assert warmup_cosine(100, 100, 2.0, 10, floor=0.05) == pytest.approx(0.1)
    rates = [warmup_cosine(s, 100, 1.0, 10) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))


def test_no_warm_up_starts_at_the_peak():
    assert warmup_cosine(0, 100, 3e-3, 0) == pytest.approx(3e-3)
    assert warmup_cosine(50, 100, 3e-3, 0) == pytest.approx(1.5e-3)


def test_the_rate_reaches_every_group():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    optimizer = torch.optim.AdamW(decay_groups(model, 0.1), lr=1.0)
    set_learning_rate(optimizer, 0.25)
    assert [group["lr"] for group in optimizer.param_groups] == [0.25, 0.25]


def test_weight_decay_only_on_matrices():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    decayed, plain = decay_groups(model, 0.1)
    assert [p.shape for p in decayed["params"]] == [torch.Size([3, 4])]
    assert len(plain["params"]) == 3 and plain["weight_decay"] == 0.0


def test_parameter_count():
    assert parameter_count(torch.nn.Linear(4, 3)) == 4 * 3 + 3


# The house rules: each of these jobs is written once, in the module named, and every
# training script and module goes through it (a second copy drifts, as the unCLIP
# decoder's own schedule and the judge's OneCycleLR once did).
ONE_OWNER = [
    (r"lr_scheduler|\[\s*['\"]lr['\"]\s*\]\s*=", "mmlearn/optim.py", "a learning-rate schedule"),
    (r"numel\(\) for \w+ in \w+(\.\w+)*\.parameters\(\)", "mmlearn/optim.py", "a parameter count"),
    (r"\* 255\)\.round\(\)|\* 255\.?0?\)\.byte\(\)", "mmlearn/images.py",
     "a float picture -> uint8 conversion"),
]


@pytest.mark.parametrize("pattern, owner, job", ONE_OWNER, ids=[job for *_, job in ONE_OWNER])
def test_one_owner_per_job(pattern, owner, job):
    copies = {name for name, text in _sources("mmlearn", "scripts", "benchmarks").items()
              if re.search(pattern, text) and name != owner}
    assert not copies, f"{job} written outside {owner}: {copies}"
