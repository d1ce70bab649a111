"""Bad input at the core's boundary: histograms, CSV points and image uploads each get a clear ValueError.

"Clear" means a sentence a person understands, never a traceback or a silent wrong number, and nothing
written outside the app's cache folder (the sandbox fixture checks a temp HOME and cwd). Checkpoints and
training faults: test_fuzz_checkpoints.py; the same inputs through the pages: test_fuzz_pages.py.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from explorer import distances as D
from explorer.toy_data import parse_points_csv
from explorer.uploads import load_uploaded_images
from fuzz_inputs import BAD_CSV, BAD_IMAGE_UPLOADS, TOKEN, _msg, _rows, huge_png, png_bytes, sandbox, zip_of  # noqa: F401

# ----------------------------------------------------------------------------- histograms (core)
BAD_HISTOGRAMS = {
    "negative": [0.5, -0.1, 0.6],
    "nan": [0.5, float("nan"), 0.5],
    "inf": [0.5, float("inf"), 0.5],
    "-inf": [0.5, -math.inf, 0.5],
    "text": ["a", "b", "c"],
    "text-number-mix": [1, "x", 2],
    "string": "1,2,3",
    "empty": [],
    "all-zeros": [0.0, 0.0, 0.0],
    "nested": [[1, 2], [3, 4]],
    "ragged": [[1], [1, 2]],
    "none": None,
    "dict": {"a": 1},
    "complex": [1j, 2, 3],
    "tiny-negative": [1.0, -1e-300, 1.0],
}
DIST_FUNCS = {
    "tv": D.tv, "kl": D.kl, "js": D.js, "emd": D.emd, "emd_plan": D.emd_plan,
    "rubner_emd": D.rubner_emd, "summary": D.summary,
}


@pytest.mark.parametrize("func", sorted(DIST_FUNCS))
@pytest.mark.parametrize("case", sorted(BAD_HISTOGRAMS))
def test_distances_reject_bad_histograms(func, case):
    bad = BAD_HISTOGRAMS[case]
    good = [1.0, 2.0, 3.0]
    for p, q in ((bad, good), (good, bad)):
        with pytest.raises(ValueError) as err:
            DIST_FUNCS[func](p, q)
        _msg(err)


@pytest.mark.parametrize("func", sorted(set(DIST_FUNCS) - {"rubner_emd"}))   # Rubner's takes any two sizes
def test_distances_reject_mismatched_lengths(func):
    with pytest.raises(ValueError) as err:
        DIST_FUNCS[func]([1, 2, 3], [1, 2])
    assert "same length" in _msg(err)


@pytest.mark.parametrize("alpha", ["x", None, float("nan"), -1.0, 0.0, math.inf])
@pytest.mark.parametrize("func", ["emd", "rubner_emd"])
def test_saturated_ground_rejects_bad_alpha(func, alpha):
    with pytest.raises(ValueError) as err:
        DIST_FUNCS[func]([1, 2], [2, 1], ground="saturated", alpha=alpha)
    _msg(err)


@pytest.mark.parametrize("base", ["2", None, 0, 1, -2, math.inf, math.nan])
def test_log_base_rejects_bad_values(base):
    for f in (D.kl, D.js, D.summary):
        with pytest.raises(ValueError) as err:
            f([1, 2], [2, 1], base=base)
        _msg(err)


@pytest.mark.parametrize("ground", ["euclid", "", None, "ABS"])
def test_unknown_ground_is_refused(ground):
    with pytest.raises(ValueError) as err:
        D.emd([1, 2], [2, 1], ground=ground)
    _msg(err)


@pytest.mark.parametrize("positions", [[0, 1], [0, 1, float("nan")], ["a", "b", "c"], [[0], [1], [2]]])
def test_bad_positions_are_refused(positions):
    with pytest.raises(ValueError) as err:
        D.emd([1, 2, 3], [3, 2, 1], positions=positions)
    _msg(err)


def test_all_zero_in_one_histogram_only():
    """One all-zero histogram is refused, whichever side it is on (no division by zero)."""
    with pytest.raises(ValueError, match="zero"):
        D.summary([0, 0, 0], [1, 1, 1])


def test_million_bins_get_an_answer_or_a_clear_refusal():
    """10^6 bins: TV/KL/JS are vectorised; EMD must answer exactly or refuse with a ValueError,
    never MemoryError (an n x n plan of 10^6 bins is 8 TB)."""
    rng = np.random.default_rng(0)
    p, q = rng.random(1_000_000), rng.random(1_000_000)
    assert 0 < D.tv(p, q) < 1
    assert math.isfinite(D.js(p, q))
    for f in (D.emd, D.summary):
        try:
            value = f(p, q)
        except ValueError as err:   # a clear refusal ("at most N bins") is fine
            assert "bins" in str(err), str(err)
            continue
        if isinstance(value, dict):
            value = value["emd"]
        assert math.isfinite(value) and value >= 0


def test_subnormal_and_huge_masses_normalize():
    """Masses near the float limits still give finite, correctly bounded answers."""
    s = D.summary([1e-310, 2e-310, 0], [0, 1e307, 1e307])
    assert 0 <= s["tv"] <= 1 and 0 <= s["js"] <= math.log(2) + 1e-12 and math.isfinite(s["emd"])
    with pytest.raises(ValueError) as err:   # a sum that overflows to inf: refused, not NaN
        D.summary([1, 1, 1], [1e308, 1e308, 1e308])
    _msg(err)


@pytest.mark.parametrize("p, q", [([0.5, 0.5], [1e-20, 1.0]), ([1e-300, 1.0, 0.0], [1.0, 1e-300, 1.0]),
                                  ([1.0] * 50 + [1e-18] * 50, [1e-18] * 50 + [1.0] * 50)])
def test_js_with_tiny_masses_matches_scipy(p, q):
    """Gaussian tails leave bins of 1e-20 next to bins of 0.5: JS must not collapse to 0 or NaN."""
    from scipy.spatial.distance import jensenshannon

    expected = jensenshannon(p, q) ** 2      # scipy's JS distance, squared: JS in nats
    assert D.js(p, q) == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert D.summary(p, q)["js"] == pytest.approx(expected, rel=1e-9, abs=1e-15)


# ----------------------------------------------------------------------------- CSV points (core)
@pytest.mark.parametrize("case", sorted(BAD_CSV))
def test_points_csv_rejects_malformed(case):
    with pytest.raises(ValueError) as err:
        parse_points_csv(BAD_CSV[case])
    _msg(err)


def test_points_csv_accepts_reasonable_variants():
    for data in ("x,y\n" + _rows(20), _rows(20).replace(",", ";"), _rows(20).replace(",", "\t"),
                 ("\ufeff" + _rows(20)).encode(), "\r\n".join(_rows(20).splitlines()), " 1 , 2 \n" * 20):
        pts = parse_points_csv(data)
        assert pts.shape == (20, 2) and np.isfinite(pts).all()


def test_points_csv_text_with_byte_order_mark_keeps_the_first_row():
    """Text decoded without utf-8-sig still starts with U+FEFF: the first data row must not be
    mistaken for a header and silently dropped."""
    assert parse_points_csv("\ufeff" + _rows(20)).shape == (20, 2)


def test_points_csv_bad_first_row_is_not_silently_dropped():
    """Only a header of words may be skipped; a damaged first data row must be reported."""
    with pytest.raises(ValueError) as err:
        parse_points_csv("1.5,abc\n" + _rows(20))
    _msg(err)

# ----------------------------------------------------------------------------- image uploads (core)
@pytest.mark.parametrize("case", sorted(BAD_IMAGE_UPLOADS))
def test_image_uploads_refuse_unusable_files(case):
    with pytest.raises(ValueError) as err:
        load_uploaded_images(BAD_IMAGE_UPLOADS[case](), size=32, channels=3)
    _msg(err)


def test_image_uploads_keep_the_good_and_explain_the_rest():
    """A mixed upload keeps the valid pictures and gives one sentence per skipped file."""
    files = [("ok.png", png_bytes()), ("bad.png", b"nope"), ("grey.png", png_bytes(mode="L")),
             ("big.png", huge_png(10_000, 10_000)),
             (f"{TOKEN}.zip", zip_of({"inside.png": png_bytes(16, 64), f"../{TOKEN}_esc.png": png_bytes(),
                                     "bomb.png": bytes(30 * 2**20)}))]
    images, skipped = load_uploaded_images(files, size=32, channels=3)
    assert images.shape == (3, 3, 32, 32) and images.dtype == np.uint8
    text = " ".join(skipped)
    assert len(skipped) == 4, skipped
    assert "bad.png" in text and "big.png" in text and "unsafe path" in text and "bomb.png" in text


def test_image_upload_file_count_is_capped():
    from explorer import uploads

    tiny = png_bytes(8, 8)
    entries = {f"img{i}.png": tiny for i in range(uploads.MAX_FILES + 5)}
    images, skipped = load_uploaded_images([(f"{TOKEN}.zip", zip_of(entries))], size=8, channels=1)
    assert len(images) == uploads.MAX_FILES and any("more than" in s for s in skipped)


@pytest.mark.parametrize("arr", [np.zeros((0, 3, 32, 32), np.uint8), None])
def test_image_source_refuses_empty_uploads(arr):
    from explorer.images import make_image_source

    with pytest.raises(ValueError) as err:
        make_image_source("upload", size=32, uploads=arr)
    _msg(err)
