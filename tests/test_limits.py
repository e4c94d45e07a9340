"""mmlearn.config reads the limits a container or mybinder.org sets: memory and CPU quota."""

import os
import subprocess
import sys

import pytest

from mmlearn import config


def test_own_cgroup_is_found_from_proc_self_cgroup(tmp_path):
    proc = tmp_path / "cgroup"
    proc.write_text("4:memory:/binder/sim\n1:cpu,cpuacct:/binder/sim\n0::/unified/sim\n")
    memory = config.own_cgroup_files("memory.max", "memory", "memory.limit_in_bytes",
                                     proc_file=str(proc), root="/cg")
    assert memory == ("/cg/unified/sim/memory.max", "/cg/memory.max",
                      "/cg/memory/binder/sim/memory.limit_in_bytes",
                      "/cg/memory/memory.limit_in_bytes")
    cpu = config.own_cgroup_files("cpu.max", "cpu", "cpu.cfs_quota_us", proc_file=str(proc),
                                  root="/cg")
    assert cpu[2] == "/cg/cpu/binder/sim/cpu.cfs_quota_us"


@pytest.mark.parametrize("cpu_max, quota, period, expected", [
    ("max 100000", "-1", "100000", None),          # no quota anywhere
    ("100000 100000", "-1", "100000", 1.0),        # cgroup v2: one CPU
    ("max 100000", "50000", "100000", 0.5),        # cgroup v1: half a CPU
    ("150000 100000", "300000", "100000", 1.5),    # the smaller of the two
    ("garbage", "", "", None)])
def test_the_cpu_quota_is_read_from_cgroup_v1_and_v2(tmp_path, monkeypatch, cpu_max, quota,
                                                     period, expected):
    monkeypatch.delenv("CPU_LIMIT", raising=False)
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    (tmp_path / "q").write_text(quota + "\n")
    (tmp_path / "p").write_text(period + "\n")
    found = config.cpu_limit((str(tmp_path / "cpu.max"), str(tmp_path / "absent")),
                             ((str(tmp_path / "q"), str(tmp_path / "p")),))
    assert found == expected


@pytest.mark.parametrize("value, expected", [("1", 1.0), ("0.5", 0.5), ("", None),
                                             ("lots", None), ("0", None), ("nan", None)])
def test_cpu_limit_follows_binders_variable(monkeypatch, value, expected):
    monkeypatch.setenv("CPU_LIMIT", value)
    assert config.cpu_limit((), ()) == expected


@pytest.mark.slow
@pytest.mark.parametrize("limit, threads", [("1", 1), ("0.5", 1)])
def test_torch_uses_no_more_threads_than_the_quota(limit, threads):
    code = "import torch, mmlearn; print(torch.get_num_threads())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "CPU_LIMIT": limit, "OMP_NUM_THREADS": "2"})
    assert result.stdout.strip() == str(threads), result.stderr
