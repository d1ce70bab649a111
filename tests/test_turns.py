"""explorer/turns.py: a worker job trains in turns of about a live run's chunk, however slow its steps."""
import time

from explorer.turns import in_turns


class Slow:
    """A trainer whose steps take step_s each."""

    def __init__(self, step_s: float):
        self.step_s, self.step_count, self.calls = step_s, 0, []

    def step(self, n: int) -> None:
        self.calls.append(n)
        time.sleep(n * self.step_s)
        self.step_count += n


def test_turns_grow_to_about_turn_s_and_end_at_the_step_asked_for():
    trainer = Slow(0.002)
    steps = [step for step, _ in in_turns(trainer, 400, turn_s=0.05)]
    assert steps[-1] == trainer.step_count == 400 and steps == sorted(steps)
    assert trainer.calls[:3] == [1, 2, 4]                    # at most twice the last turn
    assert 15 <= max(trainer.calls) <= 2 * 25                # about 0.05 s: 25 steps of 2 ms


def test_slow_steps_make_short_turns():
    trainer = Slow(0.03)                                     # a lock-step Compare step under load
    seconds = [took for _, took in in_turns(trainer, 12, turn_s=0.05)]
    assert trainer.calls == [1] * 12 and max(seconds) < 0.06   # never a turn of 25 steps (0.75 s)
