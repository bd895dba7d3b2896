"""benchmarks/bench_gpu.py runs end to end on a CPU with a tiny shape (a test of the script)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_gpu.py"


def test_gpu_benchmark_script_runs_every_row_on_a_cpu(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    code = bench.main(["--device", "cpu", "--shapes", "tiny", "--texts", "16", "--reference-texts", "4",
                       "--kl-texts", "8", "--repeat", "1", "--vocab", "400", "--lens-chunked", "tiny", "--profile",
                       "--profile-texts", "4", "--out", str(tmp_path)])
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    (shape,) = results["shapes"]
    rows = shape["rows"]
    assert set(rows) == {"reference", "plain", "hf_bf16", "hf_fp16", "hf_bf16_chunked", "lens_bf16",
                         "lens_bf16_chunked", "hf_fp32"}
    for name, row in rows.items():
        assert row["seconds"] > 0 and np.all(np.isfinite(row["values"])), name
    # every method computes the same log-likelihoods (all float32 on a CPU)
    hf = np.array(rows["hf_bf16"]["values"])
    np.testing.assert_allclose(rows["reference"]["values"], hf[:4], atol=1e-3)
    np.testing.assert_allclose(rows["plain"]["values"], hf, atol=1e-3)
    np.testing.assert_allclose(rows["lens_bf16"]["values"], hf, atol=1e-3)  # the lens' last layer
    assert len(rows["lens_bf16"]["layer_values_first_text"]) == shape["layers"] + 1
    assert rows["plain"]["padding"] >= rows["hf_bf16"]["padding"] >= 1
    assert set(shape["spurious_kl_bits_per_byte"]) >= {"hf_bf16", "hf_fp16", "plain", "reference"}
    report = (tmp_path / "results.md").read_text()
    assert "HFScorer bf16 / reference" in report and "logit lens / final-only" in report
    assert "wall" in (tmp_path / "profile_tiny.txt").read_text()


def test_next_gpu_benchmark_dry_run_checks_its_numbers_on_a_cpu(tmp_path):
    """benchmarks/bench_gpu_next.py (packing, lens, exact KL, bitsandbytes, a large vocabulary) on a CPU."""
    spec = importlib.util.spec_from_file_location("bench_gpu_next", SCRIPT.with_name("bench_gpu_next.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = ["--device", "cpu", "--shapes", "tiny,tiny-vocab", "--texts", "24", "--check-texts", "6",
            "--exact-texts", "6", "--repeat", "1", "--vocab", "400", "--no-compile", "--out", str(tmp_path)]
    if importlib.util.find_spec("bitsandbytes") is None:
        args.append("--no-bnb")
    assert bench.main(args) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    tiny, big = results["shapes"]
    expected = {"hf_bf16", "body_padded", "body_packed", "lens_bf16", "lens_compiled", "exact_kl"}
    if "--no-bnb" not in args:
        expected |= {"bnb_8bit", "bnb_4bit"}
    assert set(tiny["rows"]) == expected
    assert set(big["rows"]) == {"hf_bf16", "hf_bf16_chunked"} and big["vocab"] == 20000
    for shape in (tiny, big):
        for name, row in shape["rows"].items():
            assert "failed" not in row and row["seconds"] > 0, (shape["shape"], name)
        # packed rows and the per-layer lens give the scorers' numbers (float32)
        assert shape["checks"]["packed_vs_scorer_nats"] <= 1e-3
        assert shape["checks"]["lens_compiled_vs_lens_scorer_nats"] <= 1e-3
    # the body saw every real token, and no pad token when packed
    assert tiny["rows"]["body_packed"]["tokens"] == tiny["rows"]["body_padded"]["tokens"]
    assert "| body_packed |" in (tmp_path / "results.md").read_text()
