"""mmlearn.config's device choice: CUDA, then Apple's MPS, then CPU; overridable.

No GPU here, so CUDA and MPS are faked with monkeypatch: what is tested is the
choice, not the hardware.
"""

import warnings

import pytest
import torch

from mmlearn import config


@pytest.fixture
def machine(monkeypatch):
    """Pretend this machine has the given GPUs: machine(cuda=True, mps=False)."""
    import mmlearn
    monkeypatch.delenv(config.DEVICE_VARIABLE, raising=False)
    monkeypatch.setattr(mmlearn, "MPS_FALLBACK_TOO_LATE", False)  # pytest imported torch first

    def pretend(cuda: bool = False, mps: bool = False):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(config, "mps_available", lambda: mps)
    return pretend


@pytest.mark.parametrize("cuda, mps, expected", [(True, True, "cuda"), (True, False, "cuda"),
                                                 (False, True, "mps"), (False, False, "cpu")])
def test_the_best_device_is_chosen(machine, cuda, mps, expected, monkeypatch):
    monkeypatch.setenv(config.MPS_FALLBACK_VARIABLE, "1")
    machine(cuda=cuda, mps=mps)
    assert config.pick_device().type == expected
    assert config.pick_device("auto").type == expected


def test_the_argument_overrides_the_best_device(machine):
    machine(cuda=True)
    assert config.pick_device("cpu") == torch.device("cpu")
    assert config.pick_device(torch.device("cpu")) == torch.device("cpu")


def test_the_environment_variable_overrides_the_best_device(machine, monkeypatch):
    machine(cuda=True)
    monkeypatch.setenv(config.DEVICE_VARIABLE, "cpu")
    assert config.pick_device() == torch.device("cpu")
    assert "asked for by MMLEARN_DEVICE" in config.describe_device()


def test_the_argument_wins_over_the_environment_variable(machine, monkeypatch):
    machine(cuda=True)
    monkeypatch.setenv(config.DEVICE_VARIABLE, "cpu")
    assert config.pick_device("cuda:1") == torch.device("cuda:1")


@pytest.mark.parametrize("name", ["tpu", "gpu", "", "cuda-0"])
def test_an_unknown_device_says_which_names_exist(machine, name):
    machine()
    with pytest.raises(ValueError, match="'auto', 'cuda', 'mps', 'cpu'"):
        config.pick_device(name or " ")


@pytest.mark.parametrize("name", ["cuda", "mps"])
def test_a_device_this_machine_lacks_says_to_use_the_cpu(machine, name):
    machine(cuda=False, mps=False)
    with pytest.raises(ValueError, match="device='cpu'"):
        config.pick_device(name)


def test_a_device_of_the_wrong_type_is_a_type_error(machine):
    with pytest.raises(TypeError, match="string"):
        config.pick_device(0)


def test_mps_without_the_cpu_fallback_warns_how_to_enable_it(machine, monkeypatch):
    machine(mps=True)
    monkeypatch.delenv(config.MPS_FALLBACK_VARIABLE, raising=False)
    with pytest.warns(UserWarning, match="PYTORCH_ENABLE_MPS_FALLBACK=1"):
        config.pick_device()


def test_mps_with_the_cpu_fallback_is_quiet(machine, monkeypatch):
    machine(mps=True)
    monkeypatch.setenv(config.MPS_FALLBACK_VARIABLE, "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert config.pick_device().type == "mps"


def test_importing_mmlearn_enables_the_mps_fallback():
    import os
    assert os.environ.get(config.MPS_FALLBACK_VARIABLE) == "1"


@pytest.mark.parametrize("cuda, mps, why", [(True, False, "NVIDIA GPU"),
                                            (False, True, "Apple GPU"),
                                            (False, False, "no GPU")])
def test_the_setup_line_says_which_device_and_why(machine, monkeypatch, cuda, mps, why):
    monkeypatch.setenv(config.MPS_FALLBACK_VARIABLE, "1")
    machine(cuda=cuda, mps=mps)
    line = config.describe_device()
    assert line.startswith("Device: ") and why in line and "MMLEARN_DEVICE" in line


def test_mps_warns_when_torch_was_imported_before_mmlearn(machine, monkeypatch):
    """The variable is set now, but torch read it at its import, before mmlearn set it."""
    import mmlearn
    machine(mps=True)
    monkeypatch.setenv(config.MPS_FALLBACK_VARIABLE, "1")
    monkeypatch.setattr(mmlearn, "MPS_FALLBACK_TOO_LATE", True)
    with pytest.warns(UserWarning, match="before torch was imported"):
        config.pick_device()


@pytest.mark.slow
def test_importing_mmlearn_after_torch_is_noticed():
    import os
    import subprocess
    import sys
    code = "import {first}, {second}; print(mmlearn.MPS_FALLBACK_TOO_LATE)"
    env = {k: v for k, v in os.environ.items() if k != config.MPS_FALLBACK_VARIABLE}

    def too_late(first: str, second: str) -> str:
        result = subprocess.run([sys.executable, "-c", code.format(first=first, second=second)],
                                capture_output=True, text=True, env=env)
        return result.stdout.strip() or result.stderr
    assert too_late("mmlearn", "torch") == "False"
    assert too_late("torch", "mmlearn") == "True"
