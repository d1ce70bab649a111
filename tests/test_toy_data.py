"""2-D sources: geometry of the mixtures, reproducible sampling, CSV parsing and its errors."""
import math

import numpy as np
import pytest
import torch

from explorer.choices import TOY_DATASETS as NAMES
from explorer.toy_data import MAX_POINTS, MIN_POINTS, make_source, parse_points_csv


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_eight_gaussians_geometry_follows_the_lecture_notes():
    src = make_source("8gaussians")
    radii = np.linalg.norm(src.centres, axis=1)
    assert src.centres.shape == (8, 2)
    np.testing.assert_allclose(radii, 2 / 1.414)  # radius 2, then / 1.414
    angles = np.sort(np.mod(np.degrees(np.arctan2(src.centres[:, 1], src.centres[:, 0])), 360))
    np.testing.assert_allclose(angles, np.arange(8) * 45.0, atol=1e-9)
    assert src.std == pytest.approx(0.1 / 1.414)
    assert make_source("8gaussians", spread=0.3).std == pytest.approx(0.3 / 1.414)


def test_eight_gaussians_samples_have_the_stated_std_and_balanced_modes():
    src = make_source("8gaussians")
    x = src.sample(40_000, gen()).double().numpy()
    d = np.linalg.norm(x[:, None] - src.centres[None], axis=2)
    nearest = d.argmin(1)
    resid = x - src.centres[nearest]
    assert resid.std(axis=0) == pytest.approx([src.std] * 2, rel=0.03)
    counts = np.bincount(nearest, minlength=8) / len(x)
    np.testing.assert_allclose(counts, 1 / 8, atol=0.01)


def test_twenty_five_gaussians_grid():
    src = make_source("25gaussians")
    assert src.centres.shape == (25, 2)
    assert sorted(set(np.round(src.centres[:, 0], 6))) == pytest.approx(np.arange(-4, 5, 2) / 2.828)
    assert src.std == pytest.approx(0.05 / 2.828)


@pytest.mark.parametrize("name", ["swissroll", "ring"])
def test_shapes_without_modes(name):
    src = make_source(name)
    x = src.sample(2000, gen())
    assert x.shape == (2000, 2) and x.dtype == torch.float32 and torch.isfinite(x).all()
    assert src.centres is None and src.std is None
    assert x.abs().max() < src.lim
    if name == "ring":
        assert x.norm(dim=1).mean().item() == pytest.approx(2 / 1.414, rel=0.01)


def test_sampling_is_reproducible_per_generator():
    for name in NAMES[:-1]:
        src = make_source(name)
        assert torch.equal(src.sample(50, gen(3)), src.sample(50, gen(3)))
        assert not torch.equal(src.sample(50, gen(3)), src.sample(50, gen(4)))


def test_points_source_resamples_the_users_rows():
    pts = np.arange(40, dtype=float).reshape(20, 2)
    src = make_source("points", points=pts)
    x = src.sample(500, gen()).numpy()
    rows = {tuple(r) for r in pts}
    assert all(tuple(r) in rows for r in x)
    assert src.lim >= 1.1 * 39  # the box grows to show the data
    jittered = make_source("points", spread=0.5, points=pts).sample(500, gen()).numpy()
    assert not all(tuple(r) in rows for r in jittered)


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="moons"), "Unknown dataset"),
    (dict(name="8gaussians", spread=-1), "spread"),
    (dict(name="8gaussians", spread=float("nan")), "spread"),
    (dict(name="points"), "upload"),
    (dict(name="points", points=np.zeros((3, 2))), "at least"),
    (dict(name="points", points=np.zeros((20, 3))), "shape"),
    (dict(name="points", points=np.full((20, 2), 1e9)), "rescale"),
])
def test_make_source_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_source(**kwargs)


ROWS = "".join(f"{i},{-i / 2}\n" for i in range(MIN_POINTS))


def test_csv_with_and_without_header():
    a = parse_points_csv("x,y\n" + ROWS)
    b = parse_points_csv(ROWS.encode())
    np.testing.assert_array_equal(parse_points_csv("\ufeff" + ROWS), b)  # BOM left by a plain decode
    c = parse_points_csv(b"\xef\xbb\xbf" + ("\n\nx;y\n" + ROWS.replace(",", ";") + "\n").encode())
    assert a.shape == (MIN_POINTS, 2)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert a[3].tolist() == [3.0, -1.5]


@pytest.mark.parametrize("text, message", [
    ("x,y\n1,2,3\n" + ROWS, "Line 2 has 3 columns"),
    (ROWS + "7\n", f"Line {MIN_POINTS + 1} has 1 columns"),
    (ROWS + "1,abc\n", "not two numbers"),
    ("x,y\n" + ROWS + "a,b\n", "not two numbers"),  # a header only counts on the first line
    ("1.5,abc\n" + ROWS, "Line 1 is not two numbers"),  # a damaged first row is not a header
    (ROWS + "nan,1\n", "non-finite"),
    (ROWS + "1,inf\n", "non-finite"),
    ("x,y\n1,2\n", "at least"),
    ("", "at least"),
    (b"\xff\xfe\x00\x01", "UTF-8"),
])
def test_csv_errors_are_clear(text, message):
    with pytest.raises(ValueError, match=message):
        parse_points_csv(text)


def test_csv_row_cap():
    assert parse_points_csv("1,2\n" * MAX_POINTS).shape == (MAX_POINTS, 2)
    with pytest.raises(ValueError, match="At most"):
        parse_points_csv("1,2\n" * (MAX_POINTS + 1))


def test_csv_huge_values_rejected():
    with pytest.raises(ValueError, match="rescale"):
        parse_points_csv(ROWS + f"{math.pi * 1e6},0\n")
