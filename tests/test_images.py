"""Image data: procedural Shapes, the IDX parser and MNIST cache (no network), hostile uploads."""
import gzip
import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from explorer import mnist
from explorer.images import image_grid, make_image_source, make_shapes, to_float, to_uint8
from explorer.uploads import MAX_FILES, load_uploaded_images


# ----------------------------------------------------------------------------- Shapes
@pytest.mark.parametrize("size, channels", [(64, 3), (32, 3), (28, 1)])
def test_shapes_sizes_range_and_determinism(size, channels):
    a = make_shapes(16, size, channels, seed=3)
    assert a.shape == (16, channels, size, size) and a.dtype == np.uint8
    assert np.array_equal(a, make_shapes(16, size, channels, seed=3))
    assert not np.array_equal(a, make_shapes(16, size, channels, seed=4))
    assert (a.reshape(16, -1).max(axis=1) > 0).all()          # every image has a shape
    assert (a == 0).mean() > 0.3                                # mostly black background
    x = to_float(a)
    assert x.min() >= -1 and x.max() <= 1 and x.dtype == torch.float32


def test_shapes_have_interpolation_free_holes():
    # A hole: a background pixel whose four neighbours are all covered (forward-mapped rotation).
    a = make_shapes(64, 64, 1, seed=0)[:, 0] > 0
    inner = a[:, 1:-1, 1:-1]
    hole = ~inner & a[:, :-2, 1:-1] & a[:, 2:, 1:-1] & a[:, 1:-1, :-2] & a[:, 1:-1, 2:]
    assert hole.sum() > 20


def test_shapes_colours_are_bright_in_colour_mode():
    a = make_shapes(32, 32, 3, seed=1)
    lit = a.max(axis=1)
    assert lit.max() == 255 and np.unique(a.transpose(1, 0, 2, 3).reshape(3, -1), axis=1).shape[1] > 10


def test_grid_and_uint8_round_trip():
    a = make_shapes(10, 28, 1, seed=0)
    assert np.array_equal(to_uint8(to_float(a)), a)
    g = image_grid(a, cols=4, pad=2)
    assert g.shape == (3 * 30 + 2, 4 * 30 + 2, 3) and g.dtype == np.uint8


def test_shape_source_samples_and_heldout():
    src = make_image_source("shapes", 32, seed=0, n_heldout=40)
    assert src.channels == 3 and src.heldout.shape == (40, 3, 32, 32)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(src.sample(8, g1), src.sample(8, g2))
    assert make_image_source("shapes", 28).channels == 1
    with pytest.raises(ValueError, match="size"):
        make_image_source("shapes", 48)
    with pytest.raises(ValueError, match="Unknown image dataset"):
        make_image_source("cifar")


# ----------------------------------------------------------------------------- IDX and MNIST
def idx_bytes(images: np.ndarray, magic: int = 2051) -> bytes:
    n, r, c = images.shape
    return b"".join(v.to_bytes(4, "big") for v in (magic, n, r, c)) + images.astype(np.uint8).tobytes()


def test_idx_parser_raw_and_gzip():
    imgs = np.random.default_rng(0).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    assert np.array_equal(mnist.parse_idx_images(idx_bytes(imgs)), imgs)
    assert np.array_equal(mnist.parse_idx_images(gzip.compress(idx_bytes(imgs))), imgs)


@pytest.mark.parametrize("data, words", [
    (idx_bytes(np.zeros((2, 28, 28)), magic=2049), "magic"),
    (idx_bytes(np.zeros((2, 28, 28)))[:-10], "truncated"),
    (b"\x00\x00\x08", "truncated"),
    (gzip.compress(idx_bytes(np.zeros((2, 28, 28))))[:30], "gzip"),
])
def test_idx_parser_rejects_bad_files_clearly(data, words):
    with pytest.raises(ValueError, match=words):
        mnist.parse_idx_images(data)


def test_mnist_download_is_cached_and_injectable(tmp_path):
    train = np.full((6, 28, 28), 200, np.uint8)
    test = np.full((3, 28, 28), 50, np.uint8)
    calls = []

    def fetch(url):
        calls.append(url)
        return gzip.compress(idx_bytes(train if "train" in url else test))

    a, b = mnist.load_mnist("mnist", cache_dir=tmp_path, fetch=fetch, strict=False)
    assert a.shape == (6, 28, 28) and b.shape == (3, 28, 28) and len(calls) == 2
    assert calls[0].startswith("https://")
    a2, _ = mnist.load_mnist("mnist", cache_dir=tmp_path, fetch=lambda url: 1 / 0, strict=False)
    assert np.array_equal(a, a2)                               # read from the cache, no fetch
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(mnist.DATASETS["mnist"][1])


def test_mnist_strict_checks_the_checksum(tmp_path):
    tiny = gzip.compress(idx_bytes(np.zeros((2, 28, 28))))
    with pytest.raises(mnist.DatasetUnavailable, match="checksum"):
        mnist.load_mnist("fashion-mnist", cache_dir=tmp_path, fetch=lambda url: tiny)


def test_offline_download_suggests_shapes(tmp_path):
    def offline(url):
        raise OSError("Temporary failure in name resolution")

    with pytest.raises(mnist.DatasetUnavailable, match="Shapes") as info:
        mnist.load_mnist("mnist", cache_dir=tmp_path, fetch=offline)
    assert "offline" in str(info.value)
    with pytest.raises(OSError, match="Shapes"):
        make_image_source("mnist", 28, cache_dir=tmp_path, fetch=offline)


def test_mnist_source_resizes_batches(monkeypatch):
    train = np.random.default_rng(1).integers(0, 256, (20, 28, 28)).astype(np.uint8)
    monkeypatch.setattr(mnist, "load_mnist", lambda *a, **k: (train, train[:5]))
    src = make_image_source("mnist", 64, n_heldout=5)
    assert src.channels == 1 and src.heldout.shape == (5, 1, 64, 64)
    x = src.sample(4, torch.Generator().manual_seed(0))
    assert x.shape == (4, 1, 64, 64) and -1 <= x.min() and x.max() <= 1


# ----------------------------------------------------------------------------- uploads
def png_bytes(w=40, h=30, mode="RGB", fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h), (255, 0, 0) if mode == "RGB" else 128).save(buf, format=fmt)
    return buf.getvalue()


def zip_bytes(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_good_uploads_are_resized_and_centre_cropped():
    images, skipped = load_uploaded_images([("a.png", png_bytes(80, 40)), ("b.jpg", png_bytes(30, 60, fmt="JPEG"))],
                                           size=32, channels=3)
    assert images.shape == (2, 3, 32, 32) and skipped == []
    assert images[0, 0].min() > 240 and images[0, 1].max() < 15      # still red after the crop
    grey, _ = load_uploaded_images([("a.png", png_bytes())], size=28, channels=1)
    assert grey.shape == (1, 1, 28, 28)


def test_bad_uploads_are_skipped_with_reasons():
    good = png_bytes()
    files = [("good.png", good), ("notes.png", b"hello, not an image"), ("cut.png", good[: len(good) // 2]),
             ("huge.png", png_bytes(10_000, 10_000, mode="1")),
             ("long.png", png_bytes(9000, 2, mode="1")), ("pic.gif", _gif())]
    images, skipped = load_uploaded_images(files, size=28, channels=1)
    assert len(images) == 1 and len(skipped) == 5
    text = " ".join(skipped)
    assert "notes.png: not an image" in text and "cut.png: damaged" in text
    assert "huge.png: too many pixels (Pillow's decompression-bomb guard)" in text   # refused at the header
    assert "long.png: 9000x2 pixels is too large" in text and "pic.gif: a GIF image" in text


def _gif() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, format="GIF")
    return buf.getvalue()


def test_zip_traversal_nesting_and_bombs_are_skipped():
    bomb = b"\x00" * (30 * 2**20)             # 30 MB of zeros: compresses ~1000:1
    archive = zip_bytes({"ok/a.png": png_bytes(), "../evil.png": png_bytes(), "/abs.png": png_bytes(),
                         "inner.zip": zip_bytes({"x.png": png_bytes()}), "bomb.png": bomb,
                         "readme.txt": b"hi", "__MACOSX/._a.png": b"junk"})
    images, skipped = load_uploaded_images([("pics.zip", archive)], size=28, channels=3)
    assert images.shape == (1, 3, 28, 28)
    text = "\n".join(skipped)
    assert "../evil.png: unsafe path" in text and "/abs.png: unsafe path" in text
    assert "inner.zip: archives inside archives" in text and "readme.txt: not a .png" in text
    assert "bomb.png" in text and "__MACOSX" not in text


def test_zip_entry_lying_about_its_size_is_caught(monkeypatch):
    from explorer import uploads
    monkeypatch.setattr(uploads, "MAX_FILE_BYTES", 1000)
    monkeypatch.setattr(uploads, "MAX_RATIO", 10**9)
    archive = zip_bytes({"big.png": b"\x01" * 5000, "a.png": png_bytes(4, 4)})
    images, skipped = load_uploaded_images([("z.zip", archive)], size=8)
    assert len(images) == 1 and "big.png" in skipped[0]


def test_too_many_files_and_nothing_usable():
    tiny = png_bytes(4, 4)
    images, skipped = load_uploaded_images([(f"{i}.png", tiny) for i in range(MAX_FILES + 3)], size=8)
    assert len(images) == MAX_FILES and "more than" in skipped[-1]
    with pytest.raises(ValueError, match="None of the uploaded files"):
        load_uploaded_images([("x.png", b"nope"), ("y.zip", b"PK\x03\x04broken")], size=8)


def test_upload_source_uses_the_pictures():
    images, _ = load_uploaded_images([("a.png", png_bytes())], size=32, channels=3)
    src = make_image_source("upload", 32, uploads=images)
    assert src.channels == 3 and np.array_equal(src.heldout, images) and src.notes
    with pytest.raises(ValueError, match="upload"):
        make_image_source("upload", 32)


def test_shapes_pool_is_cached_bounded_and_apart_from_heldout():
    from explorer.images import SHAPES_POOL_BYTES, shapes_pool
    pool = shapes_pool(64, 3, busy=False)            # "shapes": one shape per image
    assert pool is shapes_pool(64, 3, busy=False) and pool.dtype == torch.uint8
    assert pool.numel() <= SHAPES_POOL_BYTES and pool.shape[1:] == (3, 64, 64)
    src = make_image_source("shapes", 64, n_heldout=8)
    assert src.pool is pool
    assert not any(torch.equal(torch.from_numpy(h), p) for h in src.heldout for p in pool[:500])


def test_the_offline_message_shows_no_server_path(tmp_path):
    def offline(url):
        raise OSError("network is unreachable")
    with pytest.raises(mnist.DatasetUnavailable) as info:
        mnist.load_mnist("mnist", cache_dir=tmp_path, fetch=offline)
    assert str(tmp_path) not in str(info.value) and "cache folder" in str(info.value)


def test_one_shape_per_image_by_default_and_several_in_the_notes_variant():
    """Each shape has one colour: one colour per image means one shape."""
    def colours(images):
        flat = images.transpose(0, 2, 3, 1).reshape(len(images), -1, 3)
        return [len({tuple(c) for c in img if c.any()}) for img in flat]
    one = make_shapes(40, 64, 3, seed=2, busy=False)
    assert all(k == 1 for k in colours(one))
    busy = make_shapes(40, 64, 3, seed=2, busy=True)
    assert max(colours(busy)) > 1
    assert make_image_source("shapes-busy", 28, n_heldout=4).name == "shapes-busy"
