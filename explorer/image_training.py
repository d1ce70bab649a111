"""The image run: its config, a DCGAN Trainer, its snapshot (sample grids, sliced W, diversity) and
its headless run, as explorer/toy_training.py is for the 2-D run.

The generic Trainer (explorer.training) does the stepping; this module only builds the networks
and samplers for images and measures what comes out.

    >>> result = train_images(ImageConfig.for_loss("gan", batch_size=8, g_features=8, c_features=8), steps=4)
    >>> sorted(result)[:3]
    ['amp', 'batch_size', 'dataset']
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from explorer.checkpoints import load_checkpoint, save_checkpoint
from explorer.choices import IMAGE_DATASETS, IMAGE_OFFER, IMAGE_SIZES, NORMS, PRECISIONS
from explorer.headless import run_headless
from explorer.images import ImageSource, image_grid, make_image_source
from explorer.metrics import diversity, sliced_w
from explorer.models import DCGANCritic, DCGANGenerator, init_dcgan
from explorer.precision import resolve_precision
from explorer.training import TrainConfig, Trainer, gaussian_noise, resolve_device
from explorer.upload_checks import (
    check_contents,
    check_tensors,
    largest_checkpoint_bytes,
    meta_networks,
    upload_config,
    upload_limits,
)

GRID_IMAGES = 64       # fixed-noise samples shown in the grid (8 x 8)
METRIC_EVERY_S = 2.0   # a live run re-measures sliced W / diversity at most this often,
METRIC_SHARE = 0.05    # and with at most this share of its time (one costs ~0.2 s on one CPU thread at 28x28)


@dataclass
class ImageConfig(TrainConfig):
    """The image run's settings. The field defaults are those of the plain GAN (DCGAN's); use
    ImageConfig.for_loss(loss, ...) for the defaults that go with another loss."""
    # gan by default: on a CPU it runs ~7x more generator steps per second than wgan-gp (n_critic 5, each
    # with a double backward; bench/image_throughput.py), the only loss that gets near shapes in minutes.
    loss: str = "gan"             # "gan" (BCE), "wgan" (weight clipping) or "wgan-gp" (gradient penalty)
    lr_g: float = 2e-4            # generator learning rate (DCGAN: 2e-4)
    lr_c: float = 2e-4            # critic learning rate
    batch_size: int = 64          # images per batch (the lecture notes use 32 to 128)
    beta2: float = 0.999          # Adam beta2 (DCGAN: 0.999; WGAN-GP: 0.9)
    n_critic: int = 1             # critic steps per generator step (WGAN and WGAN-GP: 5)
    dataset: str = "shapes"       # "shapes" (one per image, no download), "shapes-busy", "mnist", "fashion-mnist", "upload"
    image_size: int = 28          # 28, 32 or 64 pixels a side; 28 is the fast CPU default
    channels: int = 1             # 1 grey, 3 colour
    latent_dim: int = 100         # size of the noise vector z (DCGAN: 100)
    g_features: int = 32          # generator feature maps, ngf (lecture notes: 64 at 64x64)
    c_features: int = 32          # critic feature maps, ndf
    g_norm: str = "batch"         # generator normalization: batch, instance, layer or none
    c_norm: str = "batch"         # critic normalization (no batch norm under a gradient penalty: layer)
    # bf16 and fp16 apply on a CPU too, slower there than float32 (explorer/precision.py says what each does)
    amp: str = "auto"             # mixed precision: auto (bf16 on a GPU, else off), off, bf16, fp16 (loss-scaled)
    # Channels-last memory layout: same maths; helps tensor cores on a GPU, and on the CPU oneDNN's
    # convolutions skip layout copies (28x28 gan step ~1.1x faster, wgan-gp ~1.02x, bench/image_throughput.py)
    channels_last: bool = True
    n_metric: int = 256           # generated and held-out images for sliced W and diversity
    # True: the DCGAN formulation (the generator learns on the fakes the discriminator just saw; one
    # generator forward fewer per step). WGAN-GP's Algorithm 1 draws fresh noise (False).
    reuse_fakes: bool = True

    @classmethod
    def for_loss(cls, loss: str = "gan", **settings) -> "ImageConfig":
        """The settings that go with `loss`, then `settings` on top:

        gan: n_critic 1, beta2 0.999, reuse_fakes, batch-norm critic (DCGAN);
        wgan, wgan-gp: n_critic 5, beta2 0.9, fresh noise for the generator, and a layer-norm critic
        under the penalty (batch norm would mix the images of a batch). Colour unless the images are
        28 pixels or (Fashion-)MNIST, which are grey. Every loss: the generator's weights averaged
        (ema 0.999; on Shapes at ~900 steps sliced W 0.107 against 0.135 without, bench/image_quality.py).
        >>> ImageConfig.for_loss("wgan-gp").n_critic, ImageConfig.for_loss("wgan-gp", n_critic=2).n_critic
        (5, 2)
        """
        gan = loss == "gan"
        size, data = settings.get("image_size", cls.image_size), settings.get("dataset", cls.dataset)
        defaults = {"loss": loss, "n_critic": 1 if gan else 5, "beta2": 0.999 if gan else 0.9,
                    "reuse_fakes": gan, "c_norm": "layer" if loss == "wgan-gp" else "batch", "ema": 0.999,
                    "channels": 1 if (size == 28 or data in ("mnist", "fashion-mnist")) else 3}
        return cls(**{**defaults, **settings})

    def validate(self) -> None:
        super().validate()
        if self.dataset not in IMAGE_DATASETS:
            raise ValueError(f"Unknown image dataset {self.dataset!r}; choose one of {', '.join(IMAGE_DATASETS)}.")
        if self.image_size not in IMAGE_SIZES:
            raise ValueError(f"Image size must be one of {IMAGE_SIZES}; got {self.image_size!r}.")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (colour); got {self.channels!r}.")
        for name in ("g_norm", "c_norm"):
            if getattr(self, name) not in NORMS:
                raise ValueError(f"Unknown {name} {getattr(self, name)!r}; choose one of {', '.join(NORMS)}.")
        if self.loss == "wgan-gp" and self.c_norm == "batch":
            raise ValueError("Batch norm in a gradient-penalty critic makes each score depend on the whole "
                             "batch, so the per-image penalty is wrong; choose layer, instance or none.")
        if self.amp not in PRECISIONS:
            raise ValueError(f"Unknown mixed precision {self.amp!r}; choose one of {', '.join(PRECISIONS)}.")
        for name, low, top in (("latent_dim", 1, 1024), ("g_features", 1, 512), ("c_features", 1, 512),
                               ("n_metric", 2, 10_000)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= top:
                raise ValueError(f"{name} must be a whole number from {low} to {top}; got {value!r}.")


def build_networks(cfg: ImageConfig, seed: int | None = None) -> tuple[DCGANGenerator, DCGANCritic]:
    """The DCGAN pair for cfg, DCGAN-initialized from `seed` (default cfg.seed), on the CPU (whatever
    torch's default device), so one seed gives the same weights for a run on any device."""
    init_rng = torch.Generator("cpu").manual_seed(cfg.seed if seed is None else seed)
    with torch.device("cpu"):
        G, C = _networks(cfg)
    return init_dcgan(G, init_rng), init_dcgan(C, init_rng)


def _networks(cfg: ImageConfig) -> tuple[DCGANGenerator, DCGANCritic]:
    return (DCGANGenerator(cfg.image_size, cfg.channels, cfg.latent_dim, cfg.g_features, cfg.g_norm),
            DCGANCritic(cfg.image_size, cfg.channels, cfg.c_features, cfg.c_norm))


def real_batch(n: int, source: ImageSource, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """n training images from `source`, drawn with `generator`, on `device`."""
    return source.sample(n, generator).to(device, non_blocking=True)


def make_image_trainer(cfg: ImageConfig, uploads: np.ndarray | None = None,
                       source: ImageSource | None = None) -> Trainer:
    """A generic Trainer with DCGAN networks on the image source cfg.dataset.

    uploads: uint8 (n, C, H, W) pictures for dataset "upload" (explorer.uploads). The source is
    kept as `trainer.source`. On a GPU the training images live on the GPU (ImageSource.to).
    cfg.amp is resolved for the device (explorer/precision.py) and set on both networks.
    """
    cfg.validate()
    device = resolve_device(cfg.device)
    amp = resolve_precision(cfg.amp, device)
    if source is None:
        source = make_image_source(cfg.dataset, cfg.image_size, cfg.channels, cfg.seed, uploads=uploads,
                                   n_heldout=max(cfg.n_metric, GRID_IMAGES))
    source.to(device)
    G, C = build_networks(cfg)
    G, C = G.to(device), C.to(device)
    G.set_precision(amp, cfg.channels_last)
    C.set_precision(amp, cfg.channels_last)
    rng = torch.Generator(device).manual_seed(cfg.seed)
    # Real batches are drawn where the pool lives; an endless (pool-less) source draws on the CPU.
    data_rng = (rng if source.pool is not None or device.type == "cpu"
                else torch.Generator("cpu").manual_seed(cfg.seed))
    # Partials, not closures: a copy of the trainer (explorer/fork.py) then copies their generators.
    sample_real = partial(real_batch, source=source, generator=data_rng, device=device)
    sample_noise = partial(gaussian_noise, dim=cfg.latent_dim, generator=rng, device=device)
    trainer = Trainer(cfg, G, C, sample_real, sample_noise, rng=rng, amp=amp)
    trainer.source = source
    return trainer


def image_trainer_from_checkpoint(d: dict, uploads: np.ndarray | None = None, device: str = "auto") -> Trainer:
    """Rebuild an image Trainer from load_checkpoint()'s dict and restore its state, on `device` (the
    app's choice, never the file's). ValueError if the file is not an image-GAN checkpoint, declares
    more than the Image GAN page offers, or its weights do not fit the networks it describes.

    Cost bound: the networks of the page's largest settings (64 x 64 colour, 64 feature maps, latent
    size 128: 6.6 M weights, 77 MB with Adam's moments, 92 MB with the averaged generator, about twice that with the trainer's last good copy),
    checked before anything is built: about 0.5 s and 300 MB with the file itself (bench/upload_limits.py)."""
    cfg, _ = check_image_checkpoint(d, device)
    trainer = make_image_trainer(cfg, uploads)
    trainer.load_state_dict(d)
    return trainer


def image_trainer_from_bytes(data: bytes, uploads: np.ndarray | None = None, device: str = "auto") -> Trainer:
    """image_trainer_from_checkpoint on a checkpoint file's bytes (a factory a worker process can run)."""
    return image_trainer_from_checkpoint(load_checkpoint(data, UPLOAD_BYTES), uploads, device)


def describe_image_checkpoint(data: bytes, device: str = "auto") -> dict:
    """{"config": the run's settings, "step": its step, "note": a sentence or None} of an image
    checkpoint file; else ValueError. Checks everything check_image_checkpoint does; builds nothing."""
    state = load_checkpoint(data, UPLOAD_BYTES)
    cfg, note = check_image_checkpoint(state, device)
    return {"config": asdict(cfg), "step": state["step"], "note": note}


def samples_from_checkpoint(data: bytes) -> np.ndarray:
    """A grid of 64 samples (uint8 RGB) from an image checkpoint's generator, with fixed noise."""
    state = load_checkpoint(data, UPLOAD_BYTES)
    cfg = config_from_checkpoint(state)
    return image_grid(sample_images(generator_from_checkpoint(state), fixed_noise(GRID_IMAGES, cfg.latent_dim, cfg.seed)))


# The largest image run an upload may declare: the Image GAN page's largest settings, the app's own
# history cap and measurement sample; and the size of its checkpoint (92 MB), above which a file is
# refused before it is read.
UPLOAD_LIMITS = upload_limits(IMAGE_OFFER, ("image_size", "channels", "latent_dim", "g_features", "c_features",
                                            "batch_size", "n_critic"),
                              history_cap=TrainConfig.history_cap, n_metric=ImageConfig.n_metric)
UPLOAD_BYTES = largest_checkpoint_bytes(*meta_networks(_networks, ImageConfig(
    **{k: UPLOAD_LIMITS[k] for k in ("image_size", "channels", "latent_dim", "g_features", "c_features")})))


def config_from_checkpoint(d: dict, device: str = "auto") -> ImageConfig:
    """The ImageConfig stored in a checkpoint dict, validated, no larger than the page offers, on the
    app's `device` (never the file's)."""
    saved = d.get("config") if isinstance(d, dict) else None
    if not isinstance(saved, dict) or "image_size" not in saved:
        raise ValueError("This checkpoint is not from the Image GAN page (it holds no image configuration).")
    return upload_config(ImageConfig, saved, UPLOAD_LIMITS, device)


def check_image_checkpoint(d: dict, device: str = "auto") -> tuple[ImageConfig, str | None]:
    """(the run's config, a sentence if its history was thinned) if an image checkpoint dict holds
    nothing larger than the Image GAN page offers, finite weights of the right shapes and progress in
    range; ValueError otherwise. Builds nothing: the shapes come from networks on the meta device."""
    cfg = config_from_checkpoint(d, device)
    return cfg, check_contents(d, cfg, _networks)


def generator_from_checkpoint(d: dict) -> DCGANGenerator:
    """Only the generator of an image checkpoint (to draw samples without any training data)."""
    cfg = config_from_checkpoint(d)
    check_tensors(d, {"generator": meta_networks(_networks, cfg)[0]})
    G, _ = build_networks(cfg)
    G.load_state_dict(d["generator"])
    return G


# ---------------------------------------------------------------------- snapshots
@dataclass
class ImageSnapshot:
    step: int
    fake_grid: np.ndarray            # (H, W, 3) uint8: trainer.eval_generator's output for the fixed noise
    real_grid: np.ndarray            # (H, W, 3) uint8: held-out real images
    history: list[dict]              # trainer history (losses, w_est, gp) up to this step
    metrics: dict                    # latest sliced_w, sliced_w_floor, diversity, diversity_real, w_est
    metrics_log: list[dict] = field(default_factory=list)   # one record per measurement: step + metrics
    raw_grid: np.ndarray | None = None   # the trained generator's own output when fake_grid is the average's

    def as_frame(self) -> "ImageSnapshot":
        """What a kept GIF frame needs: the grids and the step, without the (growing) logs."""
        return replace(self, history=[], metrics_log=[])

    @property
    def measured_at(self) -> int:
        """The step at which `metrics` were measured (they are re-measured every few seconds)."""
        return int(self.metrics.get("step", self.step))


@torch.no_grad()
def sample_images(generator: DCGANGenerator, noise: torch.Tensor) -> torch.Tensor:
    """G(noise) in float32 on the CPU. Batch norm uses the batch's own statistics, as in training."""
    return generator(noise).float().cpu()


def fixed_noise(n: int, latent_dim: int, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The same n noise vectors for a seed on every call and every device (drawn on the CPU, then
    moved): samples are comparable across steps."""
    g = torch.Generator("cpu").manual_seed(10_007 + seed)
    return torch.randn(n, latent_dim, generator=g, device="cpu").to(device)


def measure(trainer: Trainer) -> dict:
    """sliced_w (generated vs held-out real), its floor (two real sets), diversity of both."""
    cfg, src = trainer.cfg, trainer.source
    cache = trainer.extras.setdefault("images", {})
    if "metric_noise" not in cache:
        cache["metric_noise"] = fixed_noise(cfg.n_metric, cfg.latent_dim, cfg.seed + 1, trainer.device)
        real = src.heldout[:cfg.n_metric]
        other = src.sample(len(real), torch.Generator(src.pool.device if src.pool is not None else "cpu")
                           .manual_seed(cfg.seed + 2)).cpu()
        cache["floor"] = sliced_w(real, other)
        cache["diversity_real"] = diversity(real)
    fake = sample_images(trainer.eval_generator, cache["metric_noise"])
    last = trainer.history[-1] if trainer.history else {}
    return {"sliced_w": sliced_w(fake, src.heldout[:cfg.n_metric]), "sliced_w_floor": cache["floor"],
            "diversity": diversity(fake), "diversity_real": cache["diversity_real"],
            "w_est": last.get("w_est", float("nan"))}


def image_snapshot(trainer: Trainer, force_metrics: bool = False, raw: bool | None = None) -> ImageSnapshot:
    """A drawable picture of the run: fixed-noise sample grid, real grid, curves and metrics.

    Sliced W and diversity are re-measured at most every METRIC_EVERY_S seconds and at most
    METRIC_SHARE of the time (or when forced: every 2 s, a 0.2 s measurement took a tenth of a live
    run's time);
    their log lives in trainer.extras, so a fresh trainer starts a fresh log. The trained generator's
    own grid (raw_grid, when the drawn one is the average) costs a second pass through the generator
    (~13 ms of a ~23 ms snapshot on one CPU thread), so by default it comes with the still snapshots
    (force_metrics: a manual step, a pause, the end), not with every live frame.
    """
    cfg = trainer.cfg
    cache = trainer.extras.setdefault("images", {})
    if "grid_noise" not in cache:
        cache["grid_noise"] = fixed_noise(GRID_IMAGES, cfg.latent_dim, cfg.seed, trainer.device)
        cache["real_grid"] = image_grid(trainer.source.heldout[:GRID_IMAGES])
        cache["log"], cache["measured_at"] = [], -np.inf
    log = cache["log"]
    now = time.monotonic()
    stale = not log or log[-1]["step"] != trainer.step_count
    every = max(METRIC_EVERY_S, cache.get("measure_cost", 0.0) / METRIC_SHARE)
    if stale and (force_metrics or not log or now - cache["measured_at"] >= every):
        log.append({"step": trainer.step_count, **measure(trainer)})
        cache["measured_at"], cache["measure_cost"] = now, time.monotonic() - now
    fake = sample_images(trainer.eval_generator, cache["grid_noise"])
    own = None
    if trainer.eval_generator is not trainer.generator and (force_metrics if raw is None else raw):
        own = image_grid(sample_images(trainer.generator, cache["grid_noise"]))
    return ImageSnapshot(trainer.step_count, image_grid(fake), cache["real_grid"], list(trainer.history),
                         dict(log[-1]), list(log), raw_grid=own)


# ---------------------------------------------------------------------- headless runs
def train_images(cfg: ImageConfig, steps: int, out_dir: str | None = None,
                 uploads: np.ndarray | None = None) -> dict:
    """Train `steps` generator steps headless; return timings and final metrics.

    images_per_s = steps * batch_size / training seconds (one step = n_critic critic updates and
    one generator update; snapshot time is not counted). out_dir receives checkpoint.pt,
    samples.png (fixed noise), real.png, evolution.gif, metrics.json and config.json.
    A diverged run still writes its last good state, then raises Diverged.
    """
    out = Path(out_dir) if out_dir else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    trainer = make_image_trainer(cfg, uploads)
    frame = (lambda t: image_snapshot(t, force_metrics=True).fake_grid) if out else None
    run = run_headless(trainer, steps, frame)
    frames, seconds = run.frames, run.seconds
    final = image_snapshot(trainer, force_metrics=True)
    last = trainer.history[-1] if trainer.history else {}
    result = {"steps": trainer.step_count, "seconds": seconds,
              "images_per_s": trainer.step_count * cfg.batch_size / seconds if seconds > 0 else float("nan"),
              **final.metrics, "loss_c": last.get("loss_c"), "loss_g": last.get("loss_g"),
              "loss": cfg.loss, "dataset": cfg.dataset, "image_size": cfg.image_size,
              "batch_size": cfg.batch_size, "n_critic": cfg.n_critic, "device": str(trainer.device),
              "engine": trainer.engine, "amp": trainer.amp}
    if out:
        from PIL import Image

        from explorer.plots import frames_to_gif

        frames.append(final.fake_grid)
        Image.fromarray(final.fake_grid).save(out / "samples.png")
        Image.fromarray(final.real_grid).save(out / "real.png")
        (out / "evolution.gif").write_bytes(frames_to_gif(frames, fps=6))
        save_checkpoint(trainer, out / "checkpoint.pt")
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
        (out / "metrics.json").write_text(json.dumps({"history": trainer.history, "metrics": final.metrics_log}))
        result["out"] = str(out)
    if run.failure:
        raise run.failure
    return result
