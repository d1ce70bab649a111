"""The cost bound each upload path states in its docstring, checked by counting: CSV points, pasted
histograms and image files or zips. Nothing here times anything; memory is measured with tracemalloc
(a size, not a speed), and the work done is counted by wrapping the function that does it.
(Checkpoints: test_upload_limits.py.)
"""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from explorer import histograms as H
from explorer import uploads
from explorer.toy_data import MAX_CSV_BYTES, MAX_CSV_LINES, MAX_POINTS, parse_points_csv
from explorer.uploads import load_uploaded_images
from fuzz_inputs import _msg, huge_png, png_bytes, zip_of


def peak_mb(fn, *args) -> tuple[object, float]:
    """fn(*args) and the peak of Python's allocations during it, in MB (NumPy's included)."""
    tracemalloc.start()
    try:
        try:
            out = fn(*args)
        except ValueError as err:
            out = err
        return out, tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


# ----------------------------------------------------------------------------- CSV points
def _row(i: int) -> str:
    return f"{-123.456789012345 + i * 1e-6:.15f},{987.654321098765 - i * 1e-6:.15f}\n"


def test_the_largest_csv_the_app_accepts_stays_within_its_bound():
    """MAX_POINTS rows of full-precision numbers, a header and a blank line after every row."""
    text = "x,y\n" + "".join(_row(i) + "\n" for i in range(MAX_POINTS))
    data = text.encode()
    assert len(data) <= MAX_CSV_BYTES and data.count(b"\n") <= MAX_CSV_LINES
    points, mb = peak_mb(parse_points_csv, data)
    assert points.shape == (MAX_POINTS, 2)
    assert mb < 60, f"{mb:.0f} MB"       # the docstring's bound


@pytest.mark.parametrize("case", ["bytes", "lines", "long-line"])
def test_oversized_csv_is_refused_before_its_lines_are_split(case):
    data = {"bytes": b"1,2\n" * (MAX_CSV_BYTES // 4 + 1), "lines": b"\n" * MAX_CSV_LINES + b"1,2\n",
            "long-line": b"1," * 1_000_000 + b"\n"}[case]
    err, mb = peak_mb(parse_points_csv, data)
    assert isinstance(err, ValueError) and len(str(err)) > 15
    # Nothing was split into cells or rows: the long line's million cells alone would take ~60 MB; what
    # is left is the decoded text (a few copies of a 2 MB line).
    assert mb < (20 if case == "long-line" else 1), f"{case}: {mb:.1f} MB to refuse"


# ----------------------------------------------------------------------------- pasted histograms
def test_pasted_text_is_refused_before_it_is_split():
    text = "1," * 1_000_000
    err, mb = peak_mb(H.parse_text, text, "P")
    assert isinstance(err, ValueError) and "characters" in str(err)
    assert mb < 1, f"{mb:.1f} MB to refuse"
    err, mb = peak_mb(H.parse_spikes, "1:1," * 1_000_000)
    assert isinstance(err, ValueError) and mb < 1


def test_the_largest_paste_the_app_accepts_stays_within_its_bound():
    text = ", ".join(f"{0.1 + i * 1e-13:.15f}" for i in range(H.MAX_BINS))
    assert len(text) <= H.MAX_TEXT_CHARS
    masses, mb = peak_mb(H.parse_text, text, "P")
    assert masses.shape == (H.MAX_BINS,) and mb < 5


def test_a_table_column_with_too_many_cells_is_refused_before_it_is_read():
    err, mb = peak_mb(H.parse_column, ["x"] * 2_000_000, "P")
    assert "bins" in str(err) and mb < 1


# ----------------------------------------------------------------------------- image files and zips
@pytest.fixture
def decoded(monkeypatch):
    """Pixels decoded per picture, recorded where every decoded picture passes (uploads._shrink)."""
    seen: list[int] = []
    shrink = uploads._shrink

    def counting(img, size):
        seen.append(img.size[0] * img.size[1])
        return shrink(img, size)

    monkeypatch.setattr(uploads, "_shrink", counting)
    return seen


def test_an_upload_of_pixel_bombs_decodes_at_most_its_pixel_budget(decoded):
    """Small files, big pictures: 20 PNGs of 11.9 megapixels (50 KB each) decode only within the budget."""
    bomb = huge_png(4000, 2975)
    images, skipped = load_uploaded_images([("bombs.zip", zip_of({f"b{i}.png": bomb for i in range(20)}))], 32, 1)
    assert sum(decoded) <= uploads.MAX_TOTAL_DECODE_PIXELS and len(images) == len(decoded) < 20
    assert any("million pixels" in s for s in skipped)


def test_a_png_too_large_to_decode_whole_is_refused_from_its_header(decoded):
    with pytest.raises(ValueError) as err:
        load_uploaded_images([("big.png", huge_png(4000, 3001))], 32, 1)
    assert "decoded in full" in _msg(err) and decoded == []


def test_a_large_jpeg_decodes_at_reduced_scale(decoded):
    """A 40-megapixel photo is accepted: its JPEG draft decodes at most a 64th of its pixels."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8000, 5000), (30, 120, 200)).save(buf, format="JPEG", quality=60)
    images, _ = load_uploaded_images([("photo.jpg", buf.getvalue())], 64, 3)
    assert images.shape == (1, 3, 64, 64) and decoded[0] <= 8000 * 5000 // 64


def test_the_largest_single_picture_stays_within_its_memory_bound():
    """A 12-megapixel RGBA PNG, the largest decoded whole: the docstring's 96 MB for one picture."""
    import io

    from PIL import Image

    rgba = Image.fromarray(np.zeros((3000, 4000, 4), np.uint8), "RGBA")
    buf = io.BytesIO()
    rgba.save(buf, format="PNG", compress_level=1)
    data = buf.getvalue()
    del rgba
    (images, _), mb = peak_mb(load_uploaded_images, [("max.png", data)], 64, 3)
    assert images.shape == (1, 3, 64, 64) and mb < 2 * 4 * uploads.MAX_DECODE_PIXELS / 1e6 + 5


def test_upload_counts_and_sizes_are_capped_before_decoding(decoded):
    tiny = png_bytes(8, 8)
    files = [(f"i{i}.png", tiny) for i in range(uploads.MAX_FILES + 10)]
    images, skipped = load_uploaded_images(files, 8, 1)
    assert len(images) == uploads.MAX_FILES == len(decoded)
    assert any(f"more than {uploads.MAX_FILES}" in s for s in skipped)
