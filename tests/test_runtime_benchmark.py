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
        result = runtime.run(parser.parse_args(["--steps", "40", "--warmup", "10", "--scale-steps", "20"]))
    finally:
        torch.set_num_threads(threads)
    assert {
        "onnxruntime",
        "onnxruntime_ort_fusions",
        "torch",
        "torch_full_window",
        "ort_full_window",
        "onnxruntime_weight_floor",
    } <= set(result["backends"])
    for row in [*result["backends"].values(), result["demo"]["shipped"], result["demo"]["reexported"]]:
        for summary in (row["thread_cpu"], row["wall"]):
            assert {"p50_ms", "p99_ms", "p999_ms", "max_ms"} <= set(summary) and summary["n"] == 40
    assert result["speedup_p99_vs_torch_full_window"] > 0
    assert set(result["speedups_p99"]["onnxruntime"]) == {
        f"vs_{b}_full_window_{c}" for b in ("torch", "ort") for c in ("thread_cpu", "wall")
    }
    nodes = result["nodes"]
    assert 0 < nodes["fused"] < nodes["ort_fusions"] < nodes["exported"]
    # What the backend runs (ONNX Runtime's profiler) is the attention-fused model counted.
    assert nodes["fusion"] == "attention" and nodes["run_per_step"] == nodes["fused"]
    assert result["goals"]["fused_nodes_le_80"] is True
    assert set(result["attention_fusion_p50_p99_ratio"]) == {"p50", "p99"}
    # The shipped demo artifact is exported by today's exporter: re-exporting it adds no node.
    assert result["demo"]["reexported"]["nodes"]["fused"] <= result["demo"]["shipped"]["nodes"]["fused"]
    assert abs(sum(op["share"] for op in result["top_ops_onnxruntime_profiler"]) - 1) < 0.5
    assert [(r["channels"], r["window_bins"]) for r in result["scale"]] == [
        (96, 50),
        (192, 50),
        (384, 50),
        (96, 25),
        (96, 100),
    ]
    # The floor reads every weight matrix of the step: four per layer, the token projection, the head.
    floor = result["weight_floor"]
    assert floor["weight_matrices"] >= 4 * result["model"]["n_layers"] + 2
    assert 0.5 * 4 * result["model"]["params"] < floor["weight_bytes"] < 4 * result["model"]["params"]
    assert 0 < floor["share_of_onnxruntime_p50"]
    assert len(result["machine"]["load_average_1m_5m_15m_after"]) == 3
    assert result["parity_max_abs_err"] <= 1e-4
    assert result["model"]["params"] > 100_000 and result["model"]["tokens_per_bin"] == 3


def test_engine_side_imports_do_not_load_torch(tmp_path):
    code = (
        "import sys; import rtbci.runtime; from rtbci.runtime.backends import onnxruntime_backend; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
