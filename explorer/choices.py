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
