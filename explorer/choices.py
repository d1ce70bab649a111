"""Every set of choices the app offers, once: the core validates against these, the pages and the
command line offer them (with the names people read). Plain data: importing this loads nothing.
"""
from __future__ import annotations

LOSSES = ("gan", "wgan", "wgan-gp")
LOSS_NAMES = {"gan": "GAN (BCE)", "wgan": "WGAN (weight clipping)", "wgan-gp": "WGAN-GP (gradient penalty)"}
OPTIMIZERS = ("adam", "rmsprop")
DEVICES = ("auto", "cpu", "cuda", "mps")
# How a Trainer computes its gradients: "autograd" (the readable step in training.py), "closed_form"
# (explorer/fast_mlp.py: hand-derived, for MLPs on a CPU) or "auto" (closed form where it applies).
ENGINES = ("auto", "autograd", "closed_form")
HOT_FIELDS = ("lam", "clip", "n_critic", "lr_g", "lr_c")   # changeable while a run trains

TOY_DATASETS = ("8gaussians", "25gaussians", "swissroll", "ring", "points")
TOY_DATASET_NAMES = {"8gaussians": "8 Gaussians", "25gaussians": "25 Gaussians", "swissroll": "Swiss roll",
                     "ring": "Ring", "points": "My points (CSV)"}

IMAGE_DATASETS = ("shapes", "shapes-busy", "mnist", "fashion-mnist", "upload")
IMAGE_DATASET_NAMES = {"shapes": "Shapes, one per image", "shapes-busy": "Shapes, several (notes)",
                       "mnist": "MNIST digits", "fashion-mnist": "Fashion-MNIST", "upload": "Your own pictures"}
IMAGE_SIZES = (28, 32, 64)
NORMS = ("batch", "instance", "layer", "none")
# Mixed precision (explorer/precision.py): auto is bf16 on a CUDA GPU and float32 elsewhere.
PRECISIONS = ("auto", "off", "bf16", "fp16")
PRECISION_NAMES = {"auto": "Auto (bf16 on a GPU, float32 on a CPU)", "off": "Off (float32)",
                   "bf16": "bf16 autocast", "fp16": "fp16 autocast with loss scaling"}

GROUNDS = ("abs", "sq", "saturated")    # ground distances of the EMD: |x-y|, (x-y)^2, 1-exp(-alpha|x-y|)

# ----------------------------------------------------------------------------- what the pages offer
# Each training page's settings as its widgets offer them: a tuple of the values offered, or
# (low, high, type) for a slider's range. The pages build their widgets (and what a link may set) from
# these, and an uploaded checkpoint may declare nothing larger (explorer/upload_checks.py).
TOY_LEARNING_RATES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2)
TOY_CLIPS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
EMA_DECAYS = (0.0, 0.99, 0.999)   # generator averaging: off, or the decay
TOY_OFFER = {
    "dataset": TOY_DATASETS, "loss": LOSSES, "lam": (0.0, 50.0, float), "clip": TOY_CLIPS,
    "n_critic": (1, 20, int), "lr_g": TOY_LEARNING_RATES, "lr_c": TOY_LEARNING_RATES, "optimizer": OPTIMIZERS,
    "batch_size": (64, 128, 256, 512), "width": (32, 64, 128, 256, 512), "depth": (1, 6, int),
    "seed": (0, 2**31 - 1, int), "device": DEVICES, "ema": EMA_DECAYS,
    "noise_dim": (2,),    # no widget: the page always draws 2-D noise
}

IMAGE_LEARNING_RATES = (5e-5, 1e-4, 2e-4, 5e-4, 1e-3)
IMAGE_OFFER = {
    "lam": (0.0, 50.0, float), "clip": (0.001, 0.005, 0.01, 0.02, 0.05, 0.1), "n_critic": (1, 10, int),
    "lr_g": IMAGE_LEARNING_RATES, "lr_c": IMAGE_LEARNING_RATES, "beta1": (0.0, 0.95, float),
    "beta2": (0.9, 0.99, 0.999), "batch_size": (8, 16, 32, 64, 128, 256), "latent_dim": (16, 32, 64, 100, 128),
    "g_features": (8, 16, 32, 64), "c_features": (8, 16, 32, 64), "image_size": IMAGE_SIZES, "channels": (1, 3),
    "seed": (0, 2**31 - 1, int), "ema": EMA_DECAYS,
}


def largest(spec: tuple) -> float:
    """The largest value a widget spec offers: a range's top, else the largest listed value.

    >>> largest((1, 6, int)), largest((64, 128, 256))
    (6, 256)
    """
    return spec[1] if isinstance(spec[-1], type) else max(spec)
