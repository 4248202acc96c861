"""The runtime benchmark runs end to end (few steps) and reports the keys the issue asks for."""

from __future__ import annotations

import argparse
import subprocess
import sys

import torch

from benchmarks import runtime


def test_runtime_benchmark_reports_required_keys():

    parser = argparse.ArgumentParser()
    runtime.add_arguments(parser)
    threads = torch.get_num_threads()
    try:
        result = runtime.run(parser.parse_args(["--steps", "40", "--warmup", "10"]))
    finally:
        torch.set_num_threads(threads)
    assert {"onnxruntime", "torch", "torch_full_window", "ort_full_window"} <= set(result["backends"])
    for summary in result["backends"].values():
        assert {"p50_ms", "p99_ms", "p999_ms", "max_ms"} <= set(summary) and summary["n"] == 40
    assert result["speedup_p99_vs_torch_full_window"] > 0
    assert result["parity_max_abs_err"] <= 1e-4
    assert result["model"]["params"] > 100_000 and result["model"]["tokens_per_bin"] == 3


def test_engine_side_imports_do_not_load_torch(tmp_path):
    code = (
        "import sys; import rtbci.runtime; from rtbci.runtime.backends import onnxruntime_backend; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
