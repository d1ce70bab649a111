"""Networks: MLP generator and critic for 2-D points (image networks live in a later section).

The toy networks follow the WGAN-GP 8-Gaussians program: `depth` hidden ReLU layers of `width`
units (the lecture notes use 3 x 512) and 2-D Gaussian noise in.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from explorer.choices import IMAGE_SIZES, NORMS
from explorer.precision import AMP_DTYPES


def _mlp(in_dim: int, width: int, depth: int, out_dim: int) -> nn.Sequential:
    if width < 1 or depth < 1:
        raise ValueError(f"An MLP needs width >= 1 and depth >= 1; got width={width}, depth={depth}.")
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(in_dim if i == 0 else width, width), nn.ReLU()]
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def init_linear(module: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """Re-draw every nn.Linear from `generator`: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    That is PyTorch's own default distribution; drawing it from a private generator keeps model
    construction reproducible without touching the global RNG.
    """
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.in_features)
                nn.init.uniform_(m.weight, -bound, bound, generator=generator)
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)
    return module


class MLPGenerator(nn.Module):
    """z (B, noise_dim) -> points (B, out_dim): `depth` hidden ReLU layers of `width` units."""

    def __init__(self, noise_dim: int = 2, width: int = 512, depth: int = 3, out_dim: int = 2):
        super().__init__()
        self.noise_dim, self.width, self.depth = noise_dim, width, depth
        self.net = _mlp(noise_dim, width, depth, out_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # (B, out_dim)


class MLPCritic(nn.Module):
    """x (B, in_dim) -> one score per sample (B, 1): a critic for WGAN, logits for the plain GAN."""

    def __init__(self, in_dim: int = 2, width: int = 512, depth: int = 3):
        super().__init__()
        self.in_dim, self.width, self.depth = in_dim, width, depth
        self.net = _mlp(in_dim, width, depth, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, 1)


# ============================================================================ image networks
# (DCGAN generator / discriminator / critic: appended below by the image-GAN owner)


# --- DCGAN (images) ---
# The lecture notes' 4-2-1 pattern: every layer but the first of the generator (and the last of the
# critic) is a (transposed) convolution with kernel 4, stride 2, padding 1, which doubles (halves)
# the side. 28x28 takes one kernel-3 layer (4 -> 7 -> 14 -> 28), as in the MNIST notebook.
# The critic ends in a raw score: no sigmoid. The plain GAN reads it as a logit (BCE with logits).


def norm_layer(kind: str, channels: int) -> nn.Module:
    """batch: BatchNorm2d; instance: InstanceNorm2d (affine); layer: GroupNorm(1, C), i.e. LayerNorm
    over (C, H, W) of each sample; none: Identity. Only batch norm mixes samples of a batch."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"Unknown normalization {kind!r}; choose one of {', '.join(NORMS)}.")


def _up(c_in: int, c_out: int, norm: str, k: int = 4, s: int = 2, p: int = 1) -> list[nn.Module]:
    return [nn.ConvTranspose2d(c_in, c_out, k, s, p, bias=norm == "none"), norm_layer(norm, c_out), nn.ReLU(True)]


def _down(c_in: int, c_out: int, norm: str, k: int = 4, s: int = 2, p: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, s, p, bias=norm == "none"), norm_layer(norm, c_out), nn.LeakyReLU(0.2, True)]


def _check_image_net(image_size: int, channels: int, features: int, latent_dim: int = 1) -> None:
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"DCGAN image size must be one of {IMAGE_SIZES}; got {image_size}.")
    if channels not in (1, 3) or not (1 <= features <= 512) or not (1 <= latent_dim <= 1024):
        raise ValueError(f"Need 1 or 3 channels, 1..512 feature maps and latent size 1..1024; got "
                         f"channels={channels}, features={features}, latent={latent_dim}.")


class _Precision(nn.Module):
    """Optional autocast (bf16/fp16) and channels_last around a subclass's `net`.

    amp is a resolved precision (explorer/precision.py: "off", "bf16" or "fp16"; "auto" is resolved
    by the caller for its device). Autocast runs on whatever device the input is on, the CPU
    included. Outputs are always float32, so what is computed from them (losses, the gradient
    penalty) is float32 too.
    """
    amp: str = "off"
    channels_last: bool = False

    def set_precision(self, amp: str = "off", channels_last: bool = False) -> "_Precision":
        if amp not in AMP_DTYPES:
            raise ValueError(f"Unknown mixed precision {amp!r} for a network; choose one of {', '.join(AMP_DTYPES)}.")
        self.amp, self.channels_last = amp, channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)
        return self

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        dtype = AMP_DTYPES[self.amp]
        if dtype is None:
            return self.net(x)
        with torch.autocast(x.device.type, dtype=dtype):
            return self.net(x).float()


class DCGANGenerator(_Precision):
    """z (B, latent_dim) or (B, latent_dim, 1, 1) -> images (B, channels, size, size) in [-1, 1] (tanh)."""

    def __init__(self, image_size: int = 64, channels: int = 3, latent_dim: int = 100, features: int = 64,
                 norm: str = "batch"):
        super().__init__()
        _check_image_net(image_size, channels, features, latent_dim)
        nz, f, c = latent_dim, features, channels
        self.image_size, self.channels, self.latent_dim, self.features, self.norm = image_size, c, nz, f, norm
        if image_size == 64:
            layers = [*_up(nz, f * 8, norm, s=1, p=0),      # state size. (f*8) x 4 x 4
                      *_up(f * 8, f * 4, norm),             # state size. (f*4) x 8 x 8
                      *_up(f * 4, f * 2, norm),             # state size. (f*2) x 16 x 16
                      *_up(f * 2, f, norm),                 # state size. f x 32 x 32
                      nn.ConvTranspose2d(f, c, 4, 2, 1)]    # state size. c x 64 x 64
        elif image_size == 32:
            layers = [*_up(nz, f * 4, norm, s=1, p=0),      # state size. (f*4) x 4 x 4
                      *_up(f * 4, f * 2, norm),             # state size. (f*2) x 8 x 8
                      *_up(f * 2, f, norm),                 # state size. f x 16 x 16
                      nn.ConvTranspose2d(f, c, 4, 2, 1)]    # state size. c x 32 x 32
        else:
            layers = [*_up(nz, f * 4, norm, s=1, p=0),      # state size. (f*4) x 4 x 4
                      *_up(f * 4, f * 2, norm, k=3),        # state size. (f*2) x 7 x 7
                      *_up(f * 2, f, norm),                 # state size. f x 14 x 14
                      nn.ConvTranspose2d(f, c, 4, 2, 1)]    # state size. c x 28 x 28
        self.net = nn.Sequential(*layers, nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self._run(z.reshape(len(z), self.latent_dim, 1, 1))


class DCGANCritic(_Precision):
    """images (B, channels, size, size) -> one raw score per image (B, 1).

    The DCGAN discriminator with its sigmoid removed: a Wasserstein critic, or logits for the
    plain GAN. No norm on the first layer (DCGAN); use instance/layer/none with a gradient penalty,
    since batch norm makes each score depend on the whole batch.
    """

    def __init__(self, image_size: int = 64, channels: int = 3, features: int = 64, norm: str = "instance"):
        super().__init__()
        _check_image_net(image_size, channels, features)
        f, c = features, channels
        self.image_size, self.channels, self.features, self.norm = image_size, c, f, norm
        first = [nn.Conv2d(c, f, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        if image_size == 64:                                # input c x 64 x 64
            layers = [*first,                               # state size. f x 32 x 32
                      *_down(f, f * 2, norm),               # state size. (f*2) x 16 x 16
                      *_down(f * 2, f * 4, norm),           # state size. (f*4) x 8 x 8
                      *_down(f * 4, f * 8, norm),           # state size. (f*8) x 4 x 4
                      nn.Conv2d(f * 8, 1, 4, 1, 0)]         # state size. 1 x 1 x 1
        elif image_size == 32:                              # input c x 32 x 32
            layers = [*first,                               # state size. f x 16 x 16
                      *_down(f, f * 2, norm),               # state size. (f*2) x 8 x 8
                      *_down(f * 2, f * 4, norm),           # state size. (f*4) x 4 x 4
                      nn.Conv2d(f * 4, 1, 4, 1, 0)]         # state size. 1 x 1 x 1
        else:                                               # input c x 28 x 28
            layers = [*first,                               # state size. f x 14 x 14
                      *_down(f, f * 2, norm),               # state size. (f*2) x 7 x 7
                      *_down(f * 2, f * 4, norm, k=3),      # state size. (f*4) x 4 x 4
                      nn.Conv2d(f * 4, 1, 4, 1, 0)]         # state size. 1 x 1 x 1
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x).reshape(len(x), 1)


def init_dcgan(module: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """DCGAN initialization: conv weights ~ N(0, 0.02), norm scales ~ N(1, 0.02), biases 0."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, 0.02, generator=generator)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm)) and m.weight is not None:
                nn.init.normal_(m.weight, 1.0, 0.02, generator=generator)
                nn.init.zeros_(m.bias)
    return module
