"""The command line end to end: `python -m explorer ...` in a subprocess, as a user runs it."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "explorer", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def last_json(proc: subprocess.CompletedProcess) -> dict:
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_distances_json_three_bin_example():
    proc = run_cli("distances", "1,1,1", "0.2,0.5,0.3", "--json")
    assert proc.returncode == 0, proc.stderr
    out = last_json(proc)
    p, q = [1 / 3] * 3, [0.2, 0.5, 0.3]
    assert out["tv"] == pytest.approx(0.5 * sum(abs(a - b) for a, b in zip(p, q)), abs=1e-12)
    assert out["kl_pq"] == pytest.approx(sum(a * math.log(a / b) for a, b in zip(p, q)), abs=1e-12)
    assert out["kl_qp"] == pytest.approx(sum(b * math.log(b / a) for a, b in zip(p, q)), abs=1e-12)
    # EMD on unit spacing: |CDF_P - CDF_Q| summed = |1/3-0.2| + |2/3-0.7|
    assert out["emd"] == pytest.approx(abs(1 / 3 - 0.2) + abs(2 / 3 - 0.7), abs=1e-12)
    assert 0 <= out["js"] <= math.log(2)
    assert out["unit"] == "nats"


def test_distances_bits_and_infinite_kl():
    proc = run_cli("distances", "0.5,0.5,0", "0,0.5,0.5", "--base", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    out = last_json(proc)
    assert out["kl_pq"] == "inf" and out["kl_qp"] == "inf"   # strict JSON: inf as a string
    assert out["unit"] == "bits"
    assert out["js"] <= 1.0 + 1e-12                           # at most one bit
    assert out["emd"] == pytest.approx(1.0)


def test_distances_plain_text_output():
    proc = run_cli("distances", "1,0", "0,1")
    assert proc.returncode == 0, proc.stderr
    assert "emd" in proc.stdout and "{" not in proc.stdout


@pytest.mark.parametrize("p, q, words", [
    ("1,2,x", "1,1,1", "comma-separated"),
    ("1,2", "1,1,1", "length"),
    ("-1,2", "1,1", "negative"),
    ("0,0", "1,1", "zero"),
    ("nan,1", "1,1", "finite"),
    ("1,,2", "1,1,1", "comma-separated"),
])
def test_distances_bad_input_is_a_sentence_and_exit_2(p, q, words):
    proc = run_cli("distances", p, q, "--json")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert words in proc.stderr.lower()


def test_bad_base_is_rejected():
    proc = run_cli("distances", "1,1", "1,2", "--base", "1")
    assert proc.returncode == 2 and "--base" in proc.stderr


def test_toy_end_to_end_writes_every_output(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("toy", "--loss", "wgan-gp", "--steps", "6", "--width", "16", "--batch-size", "64",
                   "--seed", "3", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    res = last_json(proc)
    assert res["steps"] == 6 and res["seconds"] > 0 and res["steps_per_s"] > 0
    assert res["w1_exact"] > 0 and res["w1_floor"] > 0 and 0 <= res["hq"] <= 1 and 0 <= res["modes"] <= 8
    assert (out / "final.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "training.gif").read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    assert json.loads((out / "config.json").read_text())["seed"] == 3
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss_c,loss_g") and len(rows) == 7
    # the critic's gradient at each of its 3 hidden layers, at each frame's step and the end
    layers = [r.split(",") for r in (out / "layer_grad_norms.csv").read_text().splitlines()]
    assert layers[0] == ["step", "layer_1", "layer_2", "layer_3"] and layers[-1][0] == "6"
    assert all(float(v) >= 0 for r in layers[1:] for v in r[1:])
    assert (out / "lipschitz.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the checkpoint loads back (weights_only) and resumes at step 6
    from explorer.checkpoints import load_checkpoint
    from explorer.toy_training import toy_trainer_from_checkpoint
    trainer = toy_trainer_from_checkpoint(load_checkpoint(out / "checkpoint.pt"))
    assert trainer.step_count == 6


def test_toy_same_seed_same_numbers():
    args = ("toy", "--loss", "wgan", "--steps", "4", "--width", "8", "--batch-size", "32", "--seed", "1", "--json")
    a, b = last_json(run_cli(*args)), last_json(run_cli(*args))
    for key in ("w1_exact", "w_est", "loss_c", "loss_g"):
        assert a[key] == b[key]


@pytest.mark.parametrize("args, words", [
    (("toy", "--loss", "wgan-gp", "--steps", "0"), "expected a number >= 1"),
    (("toy", "--dataset", "nosuch", "--steps", "1"), "unknown dataset"),
    (("toy", "--dataset", "points", "--steps", "1"), "needs --points"),
    (("toy", "--lr", "5", "--steps", "1"), "lr_g must be"),
] + ([] if torch.cuda.is_available() else [(("toy", "--device", "cuda", "--steps", "1"), "not available")]))
def test_toy_bad_flags_are_sentences(args, words):
    proc = run_cli(*args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert words in proc.stderr.lower()


def test_toy_points_from_csv(tmp_path):
    csv = tmp_path / "pts.csv"
    csv.write_text("x,y\n" + "\n".join(f"{i % 5 * 0.3},{i % 3 * 0.2}" for i in range(60)))
    proc = run_cli("toy", "--dataset", "points", "--points", str(csv), "--steps", "3", "--width", "8",
                   "--batch-size", "16", "--json")
    assert proc.returncode == 0, proc.stderr
    assert last_json(proc)["dataset"] == "points"
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\nnot,a number\n")
    proc = run_cli("toy", "--dataset", "points", "--points", str(bad), "--steps", "3")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_images_end_to_end_writes_samples_and_gif(tmp_path):
    out = tmp_path / "img"
    proc = run_cli("images", "--loss", "wgan-gp", "--steps", "2", "--batch-size", "8", "--n-critic", "1",
                   "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    res = last_json(proc)
    assert res["steps"] == 2 and res["seconds"] > 0 and res["images_per_s"] > 0 and res["sliced_w"] > 0
    assert (out / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "evolution.gif").read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    assert (out / "checkpoint.pt").stat().st_size > 0


def test_toy_starts_from_the_recommended_settings(tmp_path):
    from explorer.toy_training import ToyConfig
    out = tmp_path / "ring"
    proc = run_cli("toy", "--dataset", "ring", "--steps", "2", "--width", "8", "--batch-size", "16",
                   "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    saved = json.loads((out / "config.json").read_text())
    rec = ToyConfig.recommended("ring", "wgan-gp")
    assert saved["width"] == 8 and all(saved[k] == getattr(rec, k) for k in ("lam", "n_critic", "ema", "lr_g"))


def test_sweep_runs_every_combination_on_the_local_pool():
    proc = run_cli("sweep", "--grid", "lam=0.1,10", "--grid", "seed=0..1", "--steps", "5", "--json")
    assert proc.returncode == 0, proc.stderr
    out = last_json(proc)
    assert out["backend"] == "local" and len(out["runs"]) == 4
    assert [(r["lam"], r["seed"]) for r in out["runs"]] == [(0.1, 0), (0.1, 1), (10.0, 0), (10.0, 1)]
    for r in out["runs"]:
        assert r["steps"] == 5 and r["config"]["lam"] == r["lam"]
        assert r["w1_ratio"] == pytest.approx(r["w1_exact"] / r["w1_floor"]) and 0 <= r["hq"] <= 1
        assert {"modes", "seconds"} <= set(r)
    bad = run_cli("sweep", "--grid", "colour=red", "--steps", "5")
    assert bad.returncode == 2 and "not a setting" in bad.stderr and "Traceback" not in bad.stderr


def test_sweep_draws_its_sheet_of_small_multiples(tmp_path):
    from PIL import Image
    sheet = tmp_path / "sheet.png"
    proc = run_cli("sweep", "--grid", "lam=1,10", "--grid", "seed=0..2", "--steps", "3", "--sheet", str(sheet),
                   "--json")
    assert proc.returncode == 0, proc.stderr
    out = last_json(proc)
    assert len(out["runs"]) == 6 and not any("samples" in r for r in out["runs"])   # points drawn, not printed
    with Image.open(sheet) as picture:
        assert picture.size == (round(3 * 1.9 * 90), round(2 * 2.25 * 90))   # a column per seed, a row per lam
