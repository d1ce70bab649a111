"""A fork (a visitor's private copy of a shared run) continues bit for bit: after copying at step k,
n more steps of the copy give exactly what n more steps of an uninterrupted run give (same next
batch, same next loss, same weights), and the original goes on untouched."""
import math
from functools import partial

import pytest
import torch
from trainer_checks import TINY_IMAGES, one_thread  # noqa: F401  (one torch thread for the module)

from explorer import compare as C
from explorer.depth import DepthConfig, make_depth_runs
from explorer.fork import fork_trainer, generators
from explorer.image_training import ImageConfig, make_image_trainer
from explorer.toy_training import ToyConfig, make_toy_trainer
from session_fakes import FakeTrainer

TINY = dict(width=16, depth=2, batch_size=32, n_critic=2, seed=4)


def same_numbers(a, b) -> bool:
    """Equal, with NaN equal to NaN (a history's gp where none was computed)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_numbers(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_numbers(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return a.shape == b.shape and torch.equal(a, b)
    return a == b


def state(trainer) -> dict:
    """Everything that decides a trainer's next steps, as plain values and tensors."""
    nets = {"critic": trainer.critic.state_dict()}
    for name in ("generator", "ema_generator"):
        net = getattr(trainer, name, None)
        if net is not None:
            nets[name] = net.state_dict()
    opts = {name: getattr(trainer, name).state_dict() for name in ("opt_g", "opt_c") if hasattr(trainer, name)}
    return {"step": trainer.step_count, "nets": nets, "opts": opts, "rng": trainer.rng.get_state(),
            "history": list(getattr(trainer, "history", []))}


def lockstep_state(runs) -> dict:
    return {"step": runs.step_count, "runs": [state(t) for t in runs.trainers],
            "strip": [s.step for s in getattr(runs, "strip", [])], "diverged": list(runs.diverged)}


def check_fork_continues(make, k: int, n: int, read=state) -> None:
    original = make()
    original.step(k)
    twin = fork_trainer(original)
    assert not generators(original).keys() & generators(twin).keys()   # no random stream in common
    uninterrupted = make()
    uninterrupted.step(k + n)
    twin.step(n)
    assert same_numbers(read(twin), read(uninterrupted))               # the copy goes on as the run would
    original.step(n)
    assert same_numbers(read(original), read(uninterrupted))           # and the run itself is untouched


@pytest.mark.parametrize("engine", ["autograd", "closed_form"])
@pytest.mark.parametrize("loss", ["gan", "wgan", "wgan-gp"])
def test_a_toy_fork_continues_bit_for_bit(engine, loss):
    cfg = ToyConfig(**TINY, loss=loss, engine=engine)
    check_fork_continues(partial(make_toy_trainer, cfg), k=7, n=5)


def test_a_fork_with_generator_averaging_and_its_next_batch():
    cfg = ToyConfig(**TINY, ema=0.99)
    original = make_toy_trainer(cfg)
    original.step(6)
    twin = fork_trainer(original)
    # the next real batch and noise of both are the same numbers, drawn from two generators
    assert torch.equal(twin.sample_real(8), original.sample_real(8))
    assert torch.equal(twin.sample_noise(8), original.sample_noise(8))
    assert twin.rng is not original.rng and twin.sample_noise.keywords["generator"] is twin.rng
    check_fork_continues(partial(make_toy_trainer, cfg), k=6, n=4)


def test_an_image_fork_continues_bit_for_bit():
    cfg = ImageConfig.for_loss("wgan-gp", **TINY_IMAGES, ema=0.9)
    check_fork_continues(partial(make_image_trainer, cfg), k=2, n=2)


def test_compare_and_depth_forks_continue_bit_for_bit():
    base = ToyConfig(width=16, depth=1, batch_size=32)
    cfg = C.preset_config("WGAN-GP vs weight clipping", base, strip_every=4, n=64, grid=8)
    check_fork_continues(partial(C.make_runs, cfg), k=5, n=6, read=lockstep_state)
    deep = DepthConfig(depth=2, width=16, batch_size=32, n=64, grid=8)
    check_fork_continues(partial(make_depth_runs, deep), k=3, n=3,
                         read=lambda runs: [(t.critic.state_dict(), t.rng.get_state()) for t in runs.trainers])


def test_a_trainer_whose_closure_holds_its_generator_is_refused():
    trainer = FakeTrainer()
    rng = torch.Generator().manual_seed(0)
    trainer.draw = lambda n: torch.rand(n, generator=rng)      # the copy would still draw from `rng`
    with pytest.raises(RuntimeError, match="closure"):
        fork_trainer(trainer)
    trainer.draw = partial(torch.rand, generator=rng)          # a partial is copied with its generator
    assert fork_trainer(trainer).draw.keywords["generator"] is not rng
