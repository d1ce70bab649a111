"""Image sources for the image GAN: procedural Shapes, MNIST / Fashion-MNIST, your own pictures.

Every source hands out float tensors in [-1, 1] (the range of the generator's tanh), shape
(n, C, H, W), and keeps a held-out set of real images for the metrics.

Shapes follows the lecture notes' PurdueShapes5GAN: each image holds one to five shapes
(rectangle, triangle, disk, oval, star) at random places, sizes, orientations and colours. A shape
is rotated by *forward-mapping* its pixels to the nearest target pixel, with no interpolation, so
some target pixels receive no source pixel: the small holes the notes ask a GAN to reproduce.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from explorer.choices import IMAGE_DATASETS, IMAGE_SIZES

SHAPE_KINDS = ("rectangle", "triangle", "disk", "oval", "star")
MAX_SHAPES = 5


def _inside(kind: np.ndarray, u: np.ndarray, v: np.ndarray, r: np.ndarray, aspect: np.ndarray) -> np.ndarray:
    """Boolean mask: is the local offset (u, v) inside a shape of this kind and radius r?

    kind, r, aspect: (S, 1) per shape; u, v: (1, P) offsets of the shape's local pixel grid.
    Regular polygons use the folded-angle test: fold the angle into one sector of width 2*pi/k,
    then a point is inside iff rho * cos(phi - pi/k) <= apothem = r * cos(pi/k).
    """
    rho = np.hypot(u, v)
    theta = np.arctan2(v, u)
    rect = (np.abs(u) <= r) & (np.abs(v) <= r * aspect)
    disk = rho <= r
    oval = (u / r) ** 2 + (v / (r * aspect)) ** 2 <= 1.0
    sector = 2 * np.pi / 3
    tri = rho * np.cos(np.mod(theta, sector) - sector / 2) <= r * np.cos(sector / 2)
    # Five-pointed star: in the folded sector [0, 36 deg] the edge runs from the tip (r, 0) to the
    # inner corner (0.45 r) at 36 deg; inside = same side of that edge as the centre.
    a = np.mod(theta, 2 * np.pi / 5)
    b = np.minimum(a, 2 * np.pi / 5 - a)
    x, y = rho * np.cos(b), rho * np.sin(b)
    inner = 0.45 * r
    x2, y2 = inner * np.cos(np.pi / 5), inner * np.sin(np.pi / 5)
    star = (x2 - r) * y - y2 * (x - r) >= 0.0   # cross product: the centre gives y2 * r > 0
    masks = np.stack([rect, tri, disk, oval, star])            # (5, S, P)
    return np.take_along_axis(masks, kind[None], axis=0)[0]    # (S, P)


def make_shapes(n: int, size: int = 64, channels: int = 3, seed: int | tuple[int, ...] = 0,
                busy: bool = True) -> np.ndarray:
    """n procedural Shapes images as uint8, shape (n, channels, size, size); deterministic in seed.

    Background 0. busy (the lecture notes' PurdueShapes5GAN-like images): each of 1..5 shapes (1..3,
    larger, below 48 pixels) gets a random colour (brightest channel 255) or, in grey, a random
    intensity in [128, 255]; later shapes are drawn over earlier ones. Not busy: one plain shape per
    image, larger and nearer the middle: a first demo a GAN learns in minutes.
    >>> make_shapes(2, 28, 1, seed=1).shape
    (2, 1, 28, 28)
    """
    if n < 0 or size < 8 or channels not in (1, 3):
        raise ValueError(f"Shapes needs n >= 0, size >= 8 and 1 or 3 channels; got n={n}, size={size}, "
                         f"channels={channels}.")
    rng = np.random.default_rng(seed)
    s = n * MAX_SHAPES
    # Small images get fewer, relatively larger shapes, so a shape still spans a few pixels.
    most, (r_lo, r_hi) = (MAX_SHAPES, (0.09, 0.2)) if size >= 48 else (3, (0.14, 0.28))
    if not busy:
        most, (r_lo, r_hi) = 1, (0.22, 0.34)
    count = rng.integers(1, most + 1, size=n)
    active = (np.arange(MAX_SHAPES)[None, :] < count[:, None]).reshape(s, 1)
    kind = rng.integers(0, len(SHAPE_KINDS), size=(s, 1))
    radius = rng.uniform(r_lo, r_hi, size=(s, 1)) * size
    aspect = rng.uniform(0.45, 0.8, size=(s, 1))
    angle = rng.uniform(0, 2 * np.pi, size=(s, 1))
    centre = rng.uniform(0.15, 0.85, size=(s, 2)) * (size - 1) if busy else \
        rng.uniform(0.4, 0.6, size=(s, 2)) * (size - 1)
    if channels == 3:
        colour = rng.uniform(0.0, 1.0, size=(s, 3))
        colour = colour / colour.max(axis=1, keepdims=True)
    else:
        colour = rng.uniform(0.5, 1.0, size=(s, 1))
    colour = np.round(colour * 255).astype(np.uint8)
    if not busy:
        return _solid_shapes(size, channels, *(a[::MAX_SHAPES] for a in (kind, radius, aspect, angle, centre, colour)))

    # Local integer pixel grid of the un-rotated shape, wide enough for the largest radius.
    half = int(np.ceil(r_hi * size)) + 1
    offs = np.arange(-half, half + 1, dtype=np.float64)
    u = np.repeat(offs, offs.size)[None, :]
    v = np.tile(offs, offs.size)[None, :]
    keep = _inside(kind, u, v, radius, aspect) & active
    # Forward-map every kept source pixel to the nearest target pixel (no interpolation: holes).
    cos, sin = np.cos(angle), np.sin(angle)
    cx = np.rint(centre[:, :1] + u * cos - v * sin).astype(np.int64)
    cy = np.rint(centre[:, 1:] + u * sin + v * cos).astype(np.int64)
    keep &= (cx >= 0) & (cx < size) & (cy >= 0) & (cy < size)
    shape_id, pix = np.nonzero(keep)          # shape_id is sorted: later shapes write last
    image = shape_id // MAX_SHAPES
    out = np.zeros((n, size, size, channels), dtype=np.uint8)
    out[image, cy[shape_id, pix], cx[shape_id, pix]] = colour[shape_id]
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def _solid_shapes(size: int, channels: int, kind: np.ndarray, radius: np.ndarray, aspect: np.ndarray,
                  angle: np.ndarray, centre: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """One shape per image, each pixel mapped back into the shape's own frame: solid, no holes.
    Parameters per image: (n, 1) kind, radius, aspect, angle; (n, 2) centre; (n, channels) colour."""
    ys, xs = np.mgrid[0:size, 0:size]
    dx, dy = xs.reshape(1, -1) - centre[:, :1], ys.reshape(1, -1) - centre[:, 1:]
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = dx * cos + dy * sin, -dx * sin + dy * cos          # the inverse of the shape's rotation
    inside = _inside(kind, u, v, radius, aspect)              # (n, size * size)
    out = np.where(inside[:, :, None], colour[:, None, :], 0).astype(np.uint8)
    return np.ascontiguousarray(out.reshape(len(kind), size, size, channels).transpose(0, 3, 1, 2))


def to_float(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 images in [0, 255] -> float32 tensor in [-1, 1]: x / 127.5 - 1 (on the tensor's device;
    a NumPy array's on the CPU)."""
    t = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.asarray(images))
    return t.float().div_(127.5).sub_(1.0)


def to_uint8(images: np.ndarray | torch.Tensor) -> np.ndarray:
    """Float images in [-1, 1] (any values; clipped) -> uint8 NumPy array in [0, 255]."""
    a = images.detach().float().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images, float)
    return np.clip(np.rint((a + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(images: np.ndarray | torch.Tensor, cols: int = 8, pad: int = 2) -> np.ndarray:
    """Tile (n, C, H, W) images (float in [-1, 1] or uint8) into one RGB uint8 picture (rows, cols, 3).

    Grey images are repeated to three channels; the padding between tiles is mid-grey so black
    backgrounds stay visible.
    """
    a = images if (isinstance(images, np.ndarray) and images.dtype == np.uint8) else to_uint8(images)
    n, c, h, w = a.shape
    if c == 1:
        a = np.repeat(a, 3, axis=1)
    cols = max(1, min(cols, n))
    rows = max(1, -(-n // cols))
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 128, dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + k * (w + pad)
        grid[y:y + h, x:x + w] = a[i].transpose(1, 2, 0)
    return grid


@dataclass
class ImageSource:
    """Real images for training (sample) and a fixed held-out set (for the metrics).

    pool: uint8 tensor (N, c, h, w) of training images (Shapes: a cached pool, see shapes_pool),
    or None to draw fresh Shapes for every batch (an endless dataset, slower). A pool stored at another size or
    channel count (MNIST is 28x28 grey) is converted batch by batch, so 60 000 digits never sit
    in memory at 64x64. heldout: uint8 (M, C, H, W), never used for training (for uploads, which
    are few, it is the same pictures: the page says so).
    """
    name: str
    size: int
    channels: int
    heldout: np.ndarray
    pool: torch.Tensor | None = None
    notes: list[str] = field(default_factory=list)   # human-readable remarks (skipped uploads, ...)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n real images as float32 (n, C, H, W) in [-1, 1] on the pool's device; reproducible
        through generator (which must live on that device)."""
        if self.pool is None:
            seed = int(torch.randint(0, 2**62, (1,), generator=generator,
                                     device=generator.device if generator is not None else "cpu"))
            return to_float(make_shapes(n, self.size, self.channels, seed=seed))
        idx = torch.randint(0, len(self.pool), (n,), generator=generator, device=self.pool.device)
        return _fit(to_float(self.pool[idx]), self.size, self.channels)

    def to(self, device: torch.device | str) -> "ImageSource":
        """Keep the training images on `device` (a GPU: no host-to-device copy per batch)."""
        if self.pool is not None and torch.device(device) != self.pool.device:
            self.pool = self.pool.to(device)
        return self


SHAPES_POOL_BYTES = 2**25   # at most 32 MB of cached Shapes per size (20 000 images at 28x28 grey)


def shapes_pool(size: int, channels: int, seed: int = 0, busy: bool = True) -> torch.Tensor:
    """A cached, read-only pool of Shapes images shared by every run in the process.

    Like the notes' PurdueShapes5GAN-20000: up to 20 000 images (fewer at 64x64 colour, to stay
    within SHAPES_POOL_BYTES). Drawing from a pool is ~10x cheaper than drawing new shapes.
    """
    return _shapes_pool(int(size), int(channels), int(seed), bool(busy))


@functools.lru_cache(maxsize=4)   # keyed on all four arguments, always passed positionally
def _shapes_pool(size: int, channels: int, seed: int, busy: bool) -> torch.Tensor:
    n = min(20_000, SHAPES_POOL_BYTES // (channels * size * size))
    chunks = [make_shapes(min(1000, n - i), size, channels, seed=(20_000_003 + seed, i), busy=busy)  # bounded memory
              for i in range(0, n, 1000)]
    return torch.from_numpy(np.concatenate(chunks))


def _fit(images: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """Float (N, C, h, w) -> (N, channels, size, size): channel mean/repeat, antialiased bilinear resize."""
    if images.shape[1] != channels:
        images = images.mean(dim=1, keepdim=True) if channels == 1 else images.expand(-1, 3, -1, -1)
    if images.shape[-1] != size:
        images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear",
                                                 antialias=True, align_corners=False)
    return images


def _fit_uint8(images: np.ndarray, size: int, channels: int) -> np.ndarray:
    return to_uint8(_fit(to_float(images), size, channels))


def make_image_source(name: str = "shapes", size: int = 28, channels: int | None = None, seed: int = 0,
                      *, uploads: np.ndarray | None = None, cache_dir: str | Path | None = None,
                      fetch=None, n_heldout: int = 512) -> ImageSource:
    """Build the image source `name` (one of IMAGE_DATASETS) at size x size with 1 or 3 channels.

    channels None: grey for 28x28 and for MNIST / Fashion-MNIST, colour otherwise.
    uploads: uint8 (N, C, size, size) from explorer.uploads.load_uploaded_images (name "upload").
    cache_dir / fetch: where MNIST files are kept and how they are downloaded (see explorer.mnist).
    """
    if name not in IMAGE_DATASETS:
        raise ValueError(f"Unknown image dataset {name!r}; choose one of {', '.join(IMAGE_DATASETS)}.")
    if size not in IMAGE_SIZES:
        raise ValueError(f"Image size must be one of {IMAGE_SIZES}; got {size}.")
    if channels is None:
        channels = 1 if (size == 28 or name in ("mnist", "fashion-mnist")) else 3
    if channels not in (1, 3):
        raise ValueError(f"Images have 1 (grey) or 3 (colour) channels; got {channels}.")
    if name in ("shapes", "shapes-busy"):
        busy = name == "shapes-busy"
        # A different seed stream for the held-out images than any training batch can draw.
        heldout = make_shapes(n_heldout, size, channels, seed=10_000_019 + seed, busy=busy)
        return ImageSource(name, size, channels, heldout=heldout, pool=shapes_pool(size, channels, seed, busy))
    if name == "upload":
        if uploads is None or len(uploads) == 0:
            raise ValueError("No usable pictures were uploaded; upload PNG/JPG files or a zip of them.")
        pool = _fit_uint8(np.asarray(uploads, dtype=np.uint8), size, channels)
        return ImageSource("upload", size, channels, heldout=pool[:n_heldout], pool=torch.from_numpy(pool),
                           notes=["Held-out images are the uploaded ones themselves (too few to split)."])
    from explorer.mnist import load_mnist

    train, test = load_mnist(name, cache_dir=cache_dir, fetch=fetch)
    return ImageSource(name, size, channels, heldout=_fit_uint8(test[:n_heldout, None], size, channels),
                       pool=torch.from_numpy(train[:, None].copy()))
