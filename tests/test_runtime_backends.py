"""Export and backends: artifact contents, ONNX Runtime vs torch parity, reset, hash refusal, TensorRT."""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from rtbci.cli import main
from rtbci.errors import UserError
from rtbci.models import Checkpoint, Decoder, Encoder, EncoderConfig, RidgeHead, save_checkpoint
from rtbci.runtime import ArtifactError, load_backend, read_manifest
from rtbci.runtime.backends.onnxruntime_backend import fused_model_path
from rtbci.runtime.backends.tensorrt_backend import TensorRTUnavailableError
from rtbci.runtime.export import export_artifact, parity_inputs
from rtbci.runtime.streaming import StreamingStep

TENSORRT_MISSING = importlib.util.find_spec("tensorrt") is None


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Batch-1 steps on a shared 2-core machine: extra torch threads only wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_checkpoint(path, modality: str = "lfp", seed: int = 0, conv_bins: int = 0) -> Checkpoint:
    torch.manual_seed(seed)
    n_features = 5 if modality == "lfp" else 1
    config = EncoderConfig(
        modality=modality, n_channels=96, n_features=n_features, n_sessions=2, lfp_conv_bins=conv_bins
    )
    decoder = Decoder(Encoder(config), RidgeHead(config.d_model, 2)).eval()
    normalization = None
    if modality == "lfp":
        mean, std = np.linspace(-2, 2, 5), np.linspace(0.5, 3, 5)
        decoder.encoder.set_normalization(mean, std)
        normalization = {"mean": np.tile(mean, (96, 1)).tolist(), "std": np.tile(std, (96, 1)).tolist()}
    checkpoint = Checkpoint(
        encoder_config=config,
        state_dict=decoder.state_dict(),
        session_ids=["sim-S0-d00", "sim-S0-d01"],
        kinematics_names=["vel_x", "vel_y"],
        kinematics_units="m/s",
        normalization=normalization,
        features={"bin_ms": 20.0, "window_bins": 50, "bands_hz": ((8.0, 15.0), (15.0, 30.0))},
        metrics={"heldout_r2": 0.42, "calibration_date": "2026-11-22"},
    )
    save_checkpoint(path, checkpoint)
    return checkpoint


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    root = tmp_path_factory.mktemp("artifact")
    torch.set_num_threads(1)
    write_checkpoint(root / "model.pt")
    export_artifact(root / "model.pt", root / "lfp")
    return root / "lfp"


def reference_step(artifact_dir) -> StreamingStep:
    from rtbci.models import build_decoder, load_checkpoint

    checkpoint = load_checkpoint(artifact_dir / "decoder.pt")
    return StreamingStep(
        build_decoder(checkpoint), checkpoint.session_index(read_manifest(artifact_dir).session_id)
    )


def assert_matches_reference_and_resets(backend, artifact_dir, n_bins: int, seed: int, atol: float) -> None:
    """Step ``backend`` and the torch reference through ``n_bins`` bins, comparing each output to
    ``atol``; then reset and check that the first 10 outputs repeat exactly."""
    step = reference_step(artifact_dir)
    state = step.initial_state()
    outputs = []
    bins = parity_inputs(step, n_bins, seed=seed)
    with torch.no_grad():
        for features in bins:
            expected, *state = step(torch.from_numpy(features), *state)
            outputs.append(backend.step(features))
            np.testing.assert_allclose(outputs[-1], expected.numpy(), atol=atol)
    backend.reset()
    np.testing.assert_array_equal(np.stack([backend.step(b) for b in bins[:10]]), np.stack(outputs[:10]))


def test_artifact_files_and_manifest(artifact):
    manifest = read_manifest(artifact)
    fused = fused_model_path(artifact / "decoder.onnx", manifest.sha256).name  # written by the parity check
    assert {p.name for p in artifact.iterdir()} == {"decoder.onnx", "decoder.pt", "manifest.json", fused}
    onnx.checker.check_model(onnx.load(str(artifact / "decoder.onnx")), full_check=True)
    assert manifest.session_id == "sim-S0-d01"  # the newest session by default
    layers = range(4)
    assert [(s.name, s.shape) for s in manifest.inputs] == [
        ("features", [96, 5]),
        ("rotary", [2, 1, 16]),
        ("valid", [49 * 3]),
        *[(f"k_cache_{i}", [4, 49 * 3, 32]) for i in layers],
        *[(f"v_cache_{i}", [4, 49 * 3, 32]) for i in layers],
    ]
    assert [(s.name, s.shape) for s in manifest.outputs] == [
        ("kinematics", [2]),
        *[(f"k_new_{i}", [4, 3, 32]) for i in layers],
        *[(f"v_new_{i}", [4, 3, 32]) for i in layers],
    ]
    ring = manifest.ring
    assert ring.slots == 49 and ring.n_tokens == 3 and ring.position_input is None
    assert ring.states["k_cache_0"] == "k_new_0" and set(ring.slot_axes.values()) == {1}
    assert manifest.state_pairs == {} and manifest.format_version == 2
    assert manifest.kinematics_names == ["vel_x", "vel_y"] and manifest.kinematics_units == "m/s"
    assert manifest.bin_ms == 20.0 and manifest.window_bins == 50 and manifest.tokens_per_bin == 3
    assert manifest.features["bands_hz"] == [[8.0, 15.0], [15.0, 30.0]]
    assert np.asarray(manifest.normalization["std"]).shape == (96, 5)
    assert manifest.heldout_r2 == 0.42 and manifest.calibration_date == "2026-11-22"
    assert {"rtbci", "torch", "onnx", "onnxruntime", "opset"} <= set(manifest.versions)
    graph = onnx.load(str(artifact / "decoder.onnx"))
    assert all(d.dim_value > 0 for i in graph.graph.input for d in i.type.tensor_type.shape.dim)


def test_onnxruntime_equals_torch_over_500_steps(artifact):
    backend = load_backend("onnxruntime", artifact)
    assert backend.info()["fusion"] == "attention"
    torch_backend = load_backend("torch", artifact)
    step = reference_step(artifact)
    state = step.initial_state()
    worst_ort = worst_torch_backend = 0.0
    with torch.no_grad():
        for features in parity_inputs(step, 500, seed=3):
            expected, *state = step(torch.from_numpy(features), *state)
            worst_ort = max(worst_ort, float(np.abs(backend.step(features) - expected.numpy()).max()))
            worst_torch_backend = max(
                worst_torch_backend, float(np.abs(torch_backend.step(features) - expected.numpy()).max())
            )
    assert worst_ort <= 1e-4
    assert worst_torch_backend <= 1e-6


def test_an_lfp_convolution_streams_its_history_as_state(tmp_path):
    write_checkpoint(tmp_path / "model.pt", conv_bins=5)
    export_artifact(tmp_path / "model.pt", tmp_path / "art", parity_steps=20)
    manifest = read_manifest(tmp_path / "art")
    assert (manifest.inputs[-1].name, manifest.inputs[-1].shape) == ("history", [49, 96, 5])
    assert (manifest.inputs[1].name, manifest.inputs[1].dtype) == ("position", "int64")
    assert manifest.outputs[-1].name == "history_new" and manifest.ring.states["history"] == "history_new"
    step = reference_step(tmp_path / "art")
    bins = parity_inputs(step, 120, seed=4)
    expected = []
    state = step.initial_state()
    with torch.no_grad():
        for features in bins:
            kinematics, *state = step(torch.from_numpy(features), *state)
            expected.append(kinematics.numpy())
    backend = load_backend("onnxruntime", tmp_path / "art")
    decoded = np.stack([backend.step(b) for b in bins])
    assert np.abs(decoded - np.stack(expected)).max() <= 1e-4
    backend.reset()  # the history goes back to an average bin too
    np.testing.assert_array_equal(np.stack([backend.step(b) for b in bins[:10]]), decoded[:10])


@pytest.mark.parametrize("name", ["onnxruntime", "torch"])
def test_reset_restores_a_fresh_state(artifact, name):
    backend = load_backend(name, artifact)
    bins = parity_inputs(reference_step(artifact), 80, seed=5)
    first = np.stack([backend.step(b) for b in bins[:30]])
    for b in bins[30:]:
        backend.step(b)
    backend.reset()
    again = np.stack([backend.step(b) for b in bins[:30]])
    np.testing.assert_array_equal(first, again)
    fresh = load_backend(name, artifact)
    np.testing.assert_array_equal(first, np.stack([fresh.step(b) for b in bins[:30]]))


def test_step_returns_float32_kinematics_and_checks_shape(artifact):
    backend = load_backend("onnxruntime", artifact)
    out = backend.step(np.zeros((96, 5), dtype=np.float64))
    assert out.shape == (2,) and out.dtype == np.float32
    with pytest.raises(ValueError, match=r"\(96, 5\)"):
        backend.step(np.zeros(96, dtype=np.float32))
    info = backend.info()
    assert info["backend"] == "onnxruntime" and info["providers"] == ["CPUExecutionProvider"]


@pytest.mark.parametrize("name", ["onnxruntime", "torch"])
def test_backends_refuse_altered_or_unexpected_artifacts(artifact, tmp_path, name):
    manifest = read_manifest(artifact)
    with pytest.raises(ArtifactError, match="profile expects"):
        load_backend(name, artifact, expected_sha256="0" * 64)
    load_backend(name, artifact, expected_sha256=manifest.sha256)
    altered = tmp_path / "altered"
    shutil.copytree(artifact, altered)
    with open(altered / "decoder.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ArtifactError, match="altered"):
        load_backend(name, altered)
    (altered / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match=r"manifest\.json"):
        load_backend(name, altered)


def test_torch_backend_refuses_altered_weights(artifact, tmp_path):
    altered = tmp_path / "weights"
    shutil.copytree(artifact, altered)
    with open(altered / "decoder.pt", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ArtifactError, match=r"decoder\.pt"):
        load_backend("torch", altered)
    load_backend("onnxruntime", altered)  # ONNX Runtime does not read the torch weights


def test_unknown_backend_and_device(artifact):
    with pytest.raises(UserError, match="unknown backend 'tflite'"):
        load_backend("tflite", artifact)
    with pytest.raises(UserError, match="unknown device"):
        load_backend("onnxruntime", artifact, device="tpu")


@pytest.mark.skipif(
    not TENSORRT_MISSING, reason="TensorRT is installed here: the missing-TensorRT error cannot occur"
)
def test_tensorrt_without_tensorrt_says_what_to_install(artifact):
    with pytest.raises(UserError, match=r"pip install 'rtbci\[tensorrt\]'"):
        load_backend("tensorrt", artifact)


@pytest.mark.skipif(
    TENSORRT_MISSING, reason="TensorRT is not installed (pip install 'rtbci[tensorrt]' on a GPU machine)"
)
def test_tensorrt_equals_torch(artifact):
    try:
        backend = load_backend("tensorrt", artifact, device="cuda")  # its own GPU check (cuda-python)
    except TensorRTUnavailableError as error:
        pytest.skip(str(error))
    step = reference_step(artifact)
    state = step.initial_state()
    with torch.no_grad():
        for features in parity_inputs(step, 200, seed=7):
            expected, *state = step(torch.from_numpy(features), *state)
            np.testing.assert_allclose(backend.step(features), expected.numpy(), atol=1e-3)
    assert next(artifact.glob("decoder.*.engine")).is_file()


@pytest.mark.skipif(
    "CUDAExecutionProvider" not in ort.get_available_providers(),
    reason="ONNX Runtime has no CUDA execution provider (pip install onnxruntime-gpu on a GPU machine)",
)
def test_onnxruntime_cuda_equals_torch(artifact):
    backend = load_backend("onnxruntime", artifact, device="cuda")
    assert backend.info()["providers"][0] == "CUDAExecutionProvider"
    assert_matches_reference_and_resets(backend, artifact, 200, seed=8, atol=1e-3)  # four wraps of the ring


def test_spike_artifact_takes_counts(tmp_path):
    write_checkpoint(tmp_path / "spikes.pt", modality="spikes")
    manifest = export_artifact(
        tmp_path / "spikes.pt", tmp_path / "art", session_id="sim-S0-d00", parity_steps=60
    )
    assert manifest.inputs[0].shape == [96] and manifest.modality == "spikes"
    assert manifest.normalization is None and manifest.session_id == "sim-S0-d00"
    backend = load_backend("onnxruntime", tmp_path / "art")
    assert backend.info()["fusion"] == "attention"  # the export's parity check ran the fused graph
    out = backend.step(np.full(96, 3, dtype=np.float32))
    assert out.shape == (2,) and np.isfinite(out).all()


def test_export_cli(tmp_path, capsys):
    write_checkpoint(tmp_path / "model.pt", seed=1)
    code = main(
        [
            "export",
            "--checkpoint",
            str(tmp_path / "model.pt"),
            "--out",
            str(tmp_path / "art"),
            "--session",
            "sim-S0-d00",
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert (
        printed["sha256"] == read_manifest(tmp_path / "art").sha256 and printed["session_id"] == "sim-S0-d00"
    )
    assert main(["export", "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "x")]) == 2
    assert "missing.pt does not exist" in capsys.readouterr().err
    assert (
        main(
            [
                "export",
                "--checkpoint",
                str(tmp_path / "model.pt"),
                "--out",
                str(tmp_path / "y"),
                "--session",
                "nope",
            ]
        )
        == 2
    )
    assert "'nope'" in capsys.readouterr().err


def test_exporting_leaves_the_decoder_in_eval_mode(tmp_path):
    from rtbci.runtime.export import export_full_window

    torch.manual_seed(0)
    config = EncoderConfig(
        modality="lfp",
        n_channels=16,
        n_features=2,
        patch_channels=8,
        d_model=16,
        n_layers=1,
        n_heads=2,
        window_bins=4,
        dropout=0.5,
    )
    decoder = Decoder(Encoder(config), RidgeHead(16, 2)).eval()
    export_full_window(decoder, 0, tmp_path / "full.onnx")
    assert not decoder.training and not decoder.encoder.blocks[0].mlp.dropout.training
    window = torch.randn(1, 4, 16, 2)
    assert torch.equal(decoder(window, torch.tensor([0])), decoder(window, torch.tensor([0])))


def test_export_refuses_a_graph_that_disagrees_with_torch(tmp_path, monkeypatch):
    from rtbci.runtime import export as export_module

    write_checkpoint(tmp_path / "model.pt")
    monkeypatch.setattr(export_module, "PARITY_TOLERANCE", -1.0)  # any difference at all now counts
    with pytest.raises(ArtifactError, match="differs from torch"):
        export_artifact(tmp_path / "model.pt", tmp_path / "art", parity_steps=5)
    with pytest.raises(ArtifactError, match=r"no manifest\.json"):
        load_backend("onnxruntime", tmp_path / "art")


def test_stitching_model_with_subject_tokens_exports(tmp_path):
    torch.manual_seed(0)
    config = EncoderConfig(
        modality="lfp",
        n_channels=24,
        n_features=2,
        patch_channels=8,
        d_model=16,
        n_layers=1,
        n_heads=2,
        window_bins=5,
        context="stitching",
        n_sessions=2,
        n_subjects=2,
    )
    decoder = Decoder(Encoder(config), RidgeHead(16, 2)).eval()
    checkpoint = Checkpoint(
        encoder_config=config,
        state_dict=decoder.state_dict(),
        session_ids=["a", "b"],
        subject_ids=["S0", "S1"],
        kinematics_names=["vel_x", "vel_y"],
        kinematics_units="m/s",
    )
    save_checkpoint(tmp_path / "model.pt", checkpoint)
    with pytest.raises(ArtifactError, match="subject"):
        export_artifact(tmp_path / "model.pt", tmp_path / "none", parity_steps=5)
    manifest = export_artifact(
        tmp_path / "model.pt", tmp_path / "art", session_id="a", subject_id="S1", parity_steps=40
    )
    assert manifest.subject_id == "S1"
    ort_out = load_backend("onnxruntime", tmp_path / "art").step(np.ones((24, 2), np.float32))
    torch_out = load_backend("torch", tmp_path / "art").step(np.ones((24, 2), np.float32))
    np.testing.assert_allclose(ort_out, torch_out, atol=1e-5)
