"""A run's key: the same recipe gives the same key, any change to it (a field, a data byte, the
checkpoint) another."""
import dataclasses

import numpy as np
import pytest

from explorer import compare as C
from explorer.run_key import digest, run_key, with_updates
from explorer.toy_training import ToyConfig


def changed(value):
    """Another value of the same kind."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 1.5 + 0.1
    if isinstance(value, str):
        return value + "x"
    if value is None:
        return 0.5
    raise AssertionError(f"no change for {value!r}")


def test_identical_configs_give_identical_keys():
    assert run_key("toy", ToyConfig()) == run_key("toy", ToyConfig())
    same = dataclasses.replace(ToyConfig(), seed=3, lam=0.5)
    assert run_key("toy", ToyConfig(lam=0.5, seed=3)) == run_key("toy", same)
    a, b = C.preset_config("lambda 0.1 vs 1 vs 10"), C.preset_config("lambda 0.1 vs 1 vs 10")
    assert a is not b and run_key("compare", a) == run_key("compare", b)
    points = np.arange(20, dtype=np.float64).reshape(10, 2)
    assert run_key("toy", ToyConfig(), data=points) == run_key("toy", ToyConfig(), data=points.copy())


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(ToyConfig)])
def test_every_field_enters_the_key(name):
    base = ToyConfig()
    other = dataclasses.replace(base, **{name: changed(getattr(base, name))})
    assert run_key("toy", other) != run_key("toy", base)


def test_nested_configs_kind_seed_and_exact_floats_enter_the_key():
    cfg = C.preset_config("lambda 0.1 vs 1 vs 10")
    deeper = dataclasses.replace(cfg, base=dataclasses.replace(cfg.base, width=cfg.base.width * 2))
    assert run_key("compare", deeper) != run_key("compare", cfg)
    assert run_key("compare:grid", cfg) != run_key("compare", cfg)
    assert run_key("toy", ToyConfig(), seed=1) != run_key("toy", ToyConfig(), seed=2)
    assert run_key("toy", ToyConfig(lam=0.1)) != run_key("toy", ToyConfig(lam=0.1 + 1e-15))


def test_any_changed_data_byte_gives_another_key():
    data = bytes(range(256)) * 4
    key = run_key("toy", ToyConfig(), data=data)
    assert run_key("toy", ToyConfig(), data=bytes(data)) == key
    for i in (0, 500, len(data) - 1):
        flipped = bytearray(data)
        flipped[i] ^= 1
        assert run_key("toy", ToyConfig(), data=bytes(flipped)) != key
    assert run_key("toy", ToyConfig(), data=data + b"\0") != key
    assert run_key("toy", ToyConfig()) != run_key("toy", ToyConfig(), data=b"")


def test_arrays_differ_by_value_dtype_and_shape():
    points = np.linspace(-1, 1, 20).reshape(10, 2)
    key = run_key("toy", ToyConfig(), data=points)
    moved = points.copy()
    moved[3, 1] += 1e-12
    assert run_key("toy", ToyConfig(), data=moved) != key
    assert run_key("toy", ToyConfig(), data=points.astype(np.float32)) != key
    assert digest(points.reshape(5, 4)) != digest(points)
    assert run_key("toy", ToyConfig(), data=points[::2]) == run_key("toy", ToyConfig(), data=points[::2].copy())


def test_the_checkpoint_it_started_from_enters_the_key():
    ckpt = b"PK\x03\x04" + bytes(100)
    key = run_key("toy", ToyConfig(), checkpoint=ckpt)
    assert key != run_key("toy", ToyConfig())
    assert run_key("toy", ToyConfig(), checkpoint=ckpt[:-1] + b"\x01") != key
    assert run_key("toy", ToyConfig(), checkpoint=bytes(ckpt)) == key
    assert run_key("toy", ToyConfig(), data=ckpt) != key          # data and checkpoint are not interchangeable


def test_hot_updates_before_the_first_step_extend_the_key():
    key = run_key("toy", ToyConfig())
    assert with_updates(key, {"lam": 3.0}) == with_updates(key, {"lam": 3.0})
    assert with_updates(key, {"lam": 3.0}) != with_updates(key, {"lam": 4.0}) != key
    assert with_updates(key, {"lam": 3.0, "lr_g": 1e-3}) == with_updates(key, {"lr_g": 1e-3, "lam": 3.0})
    assert with_updates(key, {"lam": 3.0}).startswith("toy:")


def test_a_key_is_made_from_a_config_instance():
    with pytest.raises(TypeError, match="dataclass instance"):
        run_key("toy", {"lam": 1.0})
    with pytest.raises(TypeError, match="dataclass instance"):
        run_key("toy", ToyConfig)
    with pytest.raises(TypeError, match="bytes or a NumPy array"):
        run_key("toy", ToyConfig(), data=[1, 2])
