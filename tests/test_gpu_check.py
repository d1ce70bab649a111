"""bench/gpu_check.sh and bench/gpu_figures.py on a machine without a GPU: they say so, and their last
line is one JSON object; the figures' code runs end to end on a CPU at tiny sizes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA the script runs the whole GPU check (minutes)")
def test_the_gpu_check_says_there_is_no_gpu_and_ends_in_json():
    run = subprocess.run(["bash", "bench/gpu_check.sh"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHON": sys.executable})
    assert run.returncode == 0, run.stderr
    assert "No CUDA GPU" in run.stdout
    result = last_json(run.stdout)
    assert result["cuda"] is False and result["torch"] == torch.__version__


def test_the_figures_run_on_a_cpu_at_tiny_sizes():
    run = subprocess.run([sys.executable, "bench/gpu_figures.py", "--device", "cpu", "--quick", "--tests-rc", "0"],
                         cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr
    result = last_json(run.stdout)
    assert result["gpu_tests"]["passed"] and result["skipped"] == []
    amps = {(r["loss"], r["amp"]) for r in result["image_gan"]}
    assert amps == {(loss, amp) for loss in ("gan", "wgan-gp") for amp in ("off", "bf16", "fp16")}
    assert all(r["ours_images_per_s"] > 0 and r["reference_images_per_s"] > 0 for r in result["image_gan"])
    assert result["toy"][0]["cpu_steps_per_s"] > 0 and result["grid"]["cpu_run_steps_per_s"] > 0
