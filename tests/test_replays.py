"""Replays round-trip: a short run recorded, written, read back, scrubbed and forked; the fork goes on
bit for bit as the recorded run did (explorer/replays.py, explorer/replay_files.py)."""
import os
import pickle
import threading
from functools import partial
from operator import attrgetter

import numpy as np
import pytest
from trainer_checks import one_thread  # noqa: F401  (one torch thread for the module)

from explorer import compare as C
from explorer import replay_files
from explorer.pool import Pool
from explorer.replay_files import load_replay, prune, replay_or_recording, replay_path, save_replay
from explorer.replays import Replay, ReplayRecipe, nearest_checkpoint, record_replay, spread
from explorer.run_key import run_key
from explorer.session import Session
from explorer.timeline import frame_steps, moment_at
from explorer.toy_training import ToyConfig, make_toy_trainer, toy_snapshot, toy_trainer_from_bytes
from session_fakes import wait_for

CFG = ToyConfig.recommended("8gaussians", "wgan-gp", width=16, depth=1, batch_size=32)
RECIPE = ReplayRecipe(run_key("toy", CFG), partial(make_toy_trainer, CFG), partial(toy_snapshot, grid=16),
                      steps=60, frames=5, checkpoints=4)


def recorded(recipe: ReplayRecipe = RECIPE) -> tuple[Replay, list[int]]:
    """Drain record_replay as a worker would: (the replay, every step it yielded)."""
    turns, yielded = record_replay(recipe), []
    while True:
        try:
            yielded.append(next(turns))
        except StopIteration as done:
            return done.value, yielded


@pytest.fixture(scope="module")
def recording() -> tuple[Replay, list[int]]:
    return recorded()


@pytest.fixture(scope="module")
def replay(recording) -> Replay:
    return recording[0]


@pytest.fixture(scope="module")
def pool():
    pool = Pool(size=1)
    yield pool
    pool.shutdown()


def test_steps_are_spread_evenly_with_both_ends():
    assert spread(60, 5) == [0, 15, 30, 45, 60] and spread(60, 4) == [0, 20, 40, 60]
    assert spread(3, 41) == [0, 1, 2, 3]   # a run shorter than its frames keeps a frame a step


def test_recording_gives_the_worker_back_every_turn_and_keeps_frames_numbers_and_checkpoints(recording):
    replay, yielded = recording
    assert yielded == sorted(yielded) and yielded[-1] == 60
    assert len(yielded) > len(set(spread(60, 5)) | set(spread(60, 4)))   # turns within the stretches between
    assert frame_steps(replay.frames) == [0, 15, 30, 45, 60] and sorted(replay.checkpoints) == [0, 20, 40, 60]
    assert [r["step"] for r in replay.log] == [0, 15, 30, 45, 60]
    assert all(f.history == [] and f.metrics["modes"] is not None for f in replay.frames)   # as_frame(), measured
    assert [r["step"] for r in replay.history] == list(range(1, 61))
    assert replay.name == RECIPE.name and replay.key == RECIPE.key and replay.seconds > 0


def test_a_replay_reads_back_from_its_file_as_written(replay, tmp_path):
    path = save_replay(replay, tmp_path)
    assert path == replay_path(tmp_path, RECIPE.name) and path.name.endswith(".v1.replay")
    back = load_replay(tmp_path, RECIPE.name)
    assert back.log == replay.log and back.history == replay.history and back.checkpoints == replay.checkpoints
    for a, b in zip(back.frames, replay.frames):
        assert a.step == b.step and np.array_equal(a.fake, b.fake) and np.array_equal(a.field, b.field)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]   # the temporary file was renamed


def test_scrubbing_shows_the_frame_and_numbers_at_or_before_a_step(replay):
    moment = moment_at(replay.frames, replay.log, 40)
    assert moment.frame.step == 30 and moment.numbers_step == 30
    assert moment.numbers == moment.frame.metrics              # measured with the frame
    assert nearest_checkpoint(replay, 40)[0] == 40 and nearest_checkpoint(replay, 39)[0] == 20
    assert nearest_checkpoint(replay, 0)[0] == 0


def test_a_fork_from_a_checkpoint_goes_on_as_the_recorded_run_did(replay):
    """The checkpoint holds the weights, the optimizers' moments, the history and the random state: the
    fork's next losses, and its frame at the next kept step, are the recorded run's, bit for bit."""
    at, data = nearest_checkpoint(replay, 25)
    fork = toy_trainer_from_bytes(data)
    assert fork.step_count == at == 20 and fork.history == replay.history[:20]
    fork.step(40)
    assert fork.history == replay.history                      # steps 21..60, every loss equal
    frame = toy_snapshot(fork, grid=16)
    last = replay.frames[-1]
    assert np.array_equal(frame.fake, last.fake) and np.array_equal(frame.field, last.field)
    assert frame.metrics == last.metrics


def test_a_live_session_forked_in_a_worker_goes_on_as_the_recording_did(replay, pool):
    """'Train live from here' as the page does it: a Session whose factory rebuilds the trainer from the
    checkpoint's bytes in a worker process, keyed by the checkpoint (forking visitors share it)."""
    at, data = nearest_checkpoint(replay, 45)
    key = run_key("toy", CFG, checkpoint=data)
    session = Session(partial(toy_trainer_from_bytes, data), partial(toy_snapshot, grid=16), pool=pool, key=key)
    try:
        assert session.run_key == key != run_key("toy", CFG)
        session.step(60 - at)
        assert session.call(attrgetter("history")) == replay.history
        assert np.array_equal(session.latest().fake, replay.frames[-1].fake)
    finally:
        session.close()


def small_replay(name: str, size: int = 1000) -> Replay:
    return Replay(name, "toy:x", 1, [np.zeros(size // 8)], [{"step": 0}], [], {0: b"c"})


def test_the_folder_stays_under_its_cap_and_the_least_recently_read_go_first(tmp_path):
    for i, name in enumerate(["a", "b", "c"]):
        save_replay(small_replay(name), tmp_path)
        os.utime(replay_path(tmp_path, name), (1000 + i, 1000 + i))   # a oldest, c newest
    one = replay_path(tmp_path, "a").stat().st_size
    assert load_replay(tmp_path, "a") is not None            # read now: the most recently used
    removed = prune(tmp_path, max_bytes=2 * one)
    assert removed == [replay_path(tmp_path, "b")]
    save_replay(small_replay("d"), tmp_path, max_bytes=one)   # the one just written stays, whatever the cap
    assert [p.name for p in tmp_path.iterdir()] == [replay_path(tmp_path, "d").name]


def test_an_unreadable_or_foreign_file_is_removed_and_never_run(tmp_path):
    path = replay_path(tmp_path, "r")
    for junk in (b"", b"not a pickle", pickle.dumps({"format": "other", "version": 1, "replay": None}),
                 pickle.dumps(small_replay("another name"))):
        path.write_bytes(junk)
        assert load_replay(tmp_path, "r") is None and not path.exists()
    path.write_bytes(pickle.dumps({"format": replay_files.FORMAT, "version": 1, "replay": RunsCode()}))
    assert load_replay(tmp_path, "r") is None and not path.exists() and not RunsCode.ran
    assert load_replay(tmp_path, "never recorded") is None


class RunsCode:
    """A pickle that would call a function on load (here a harmless one)."""
    ran = False

    def __reduce__(self):
        return (_mark_ran, ())


def _mark_ran():
    RunsCode.ran = True


def test_two_writers_at_once_leave_a_whole_file(replay, tmp_path):
    def write():
        for _ in range(5):
            save_replay(replay, tmp_path)

    writers = [threading.Thread(target=write) for _ in range(2)]
    for w in writers:
        w.start()
    reads = []
    while any(w.is_alive() for w in writers):
        if replay_path(tmp_path, RECIPE.name).exists():
            reads.append(load_replay(tmp_path, RECIPE.name))
    for w in writers:
        w.join()
    assert all(r is not None for r in reads) and load_replay(tmp_path, RECIPE.name) is not None


def test_a_page_gets_the_recording_job_then_the_replay_and_a_corrupt_file_is_recorded_again(tmp_path, pool):
    job = replay_or_recording(RECIPE, tmp_path, pool)
    assert not isinstance(job, Replay)
    assert replay_or_recording(RECIPE, tmp_path, pool) is job         # one recording for every request
    assert isinstance(job.result(60), Replay) and job.latest == 60     # its progress: the step reached
    assert wait_for(lambda: isinstance(replay_or_recording(RECIPE, tmp_path, pool), Replay))
    path = replay_path(tmp_path, RECIPE.name)
    assert path.exists()                                                # written by the server
    replay_files._KEPT.clear()                                          # as at the next server start
    path.write_bytes(b"\x80\x05garbage")
    again = replay_or_recording(RECIPE, tmp_path, pool)                 # no crash: recorded again
    assert not isinstance(again, Replay) and not path.exists()
    assert isinstance(again.result(60), Replay)
    assert wait_for(lambda: load_replay(tmp_path, RECIPE.name) is not None)


def test_replays_held_in_memory_stay_under_their_cap(tmp_path, monkeypatch, replay):
    path = save_replay(replay, tmp_path)
    monkeypatch.setattr(replay_files, "KEPT_BYTES", path.stat().st_size)
    monkeypatch.setattr(replay_files, "_KEPT", type(replay_files._KEPT)())
    with replay_files._LOCK:
        replay_files._keep(path, replay)
        replay_files._keep(tmp_path / "other.v1.replay", small_replay("other"))   # its checkpoints' size, 1 byte
    assert list(replay_files._KEPT) == [tmp_path / "other.v1.replay"]   # the older one is read again when asked


COMPARED = C.preset_config("1 vs 5 critic iterations", ToyConfig(width=16, depth=1, batch_size=32),
                           strip_every=10, n=64, grid=16, recommended=True)


def test_a_compare_replay_round_trips_and_its_runs_fork_in_lock_step_bit_for_bit(tmp_path):
    recipe = ReplayRecipe(run_key("compare:Side by side", COMPARED), partial(C.make_runs, COMPARED),
                          C.take_still_snapshot, steps=30, frames=4, checkpoints=3)
    replay = recorded(recipe)[0]
    assert frame_steps(replay.frames) == [0, 10, 20, 30] and sorted(replay.checkpoints) == [0, 15, 30]
    assert all(p.history == [] for f in replay.frames for p in f.panels)    # kept frames hold no histories
    assert len(replay.log[-1]["w1_exact"]) == 2                              # a live Compare run's log records
    back = load_replay(tmp_path, recipe.name) if save_replay(replay, tmp_path) else None
    assert [f.step for f in back.frames] == [0, 10, 20, 30] and back.log == replay.log
    at, data = nearest_checkpoint(back, 29)
    fork = C.runs_from_bytes(COMPARED, data)
    assert at == fork.step_count == 15
    fork.step(15)
    whole = C.make_runs(COMPARED)
    whole.step(30)
    assert [t.history for t in fork.trainers] == [t.history for t in whole.trainers]
    last = C.take_still_snapshot(fork)
    for mine, kept in zip(last.panels, replay.frames[-1].panels):
        assert np.array_equal(mine.fake, kept.fake) and np.array_equal(mine.field, kept.field)
    three = C.preset_config("lambda 0.1 vs 1 vs 10", COMPARED.base, strip_every=10, n=64, grid=16)
    with pytest.raises(ValueError, match="does not hold the 3 runs"):   # another comparison's checkpoint
        C.runs_from_bytes(three, data)
