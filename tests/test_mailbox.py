"""The Mailbox between a Ray actor's calls and its Worker: messages in order whatever order the pushes
ran in, every report to every server that pulls, a server gone silent forgotten, an ended loop seen."""
import threading
import time

import pytest

from explorer.mailbox import Mailbox


def drain(box: Mailbox) -> list:
    got = []
    while box.poll(0):
        got.append(box.recv())
    return got


def test_pushes_reach_the_worker_in_their_numbers_order():
    box = Mailbox()
    box.push("a", 1, "pause")              # ran before the push numbered 0
    assert not box.poll(0)                 # it waits for the start
    box.push("b", 0, "other")              # another server's numbering is its own
    box.push("a", 0, "start")
    box.push("a", 2, "resume")
    assert drain(box) == ["other", "start", "pause", "resume"]


def test_every_server_pulls_every_report_once():
    box = Mailbox()
    box.join("a")
    box.join("b")
    box.send_bytes(b"1")
    box.send_bytes(b"2")
    assert box.pull("a", 0) == [b"1", b"2"] and box.pull("a", 0) == []
    assert box.pull("b", 0) == [b"1", b"2"]
    box.leave("b")
    box.send_bytes(b"3")
    assert box.pull("a", 0) == [b"3"]


def test_a_pull_waits_for_a_report_and_no_longer_than_asked():
    box = Mailbox()
    box.join("a")
    threading.Timer(0.1, box.send_bytes, (b"late",)).start()
    start = time.monotonic()
    assert box.pull("a", 5.0) == [b"late"]
    assert time.monotonic() - start < 2.0
    start = time.monotonic()
    assert box.pull("a", 0.2) == []
    assert 0.15 < time.monotonic() - start < 2.0


def test_a_server_that_stopped_pulling_is_forgotten():
    box = Mailbox(forget_after_s=0.1)
    box.join("gone")
    box.join("here")
    time.sleep(0.2)
    box.pull("here", 0)
    box.send_bytes(b"x")
    assert box._outboxes.keys() == {"here"}    # nothing piles up for a replica that died


def test_an_ended_loop_hands_out_what_is_left_then_says_so():
    box = Mailbox()
    box.join("a")
    box.send_bytes(b"last")
    box.close()
    assert box.pull("a", 1.0) == [b"last"]
    assert box.pull("a", 1.0) is None
    with pytest.raises(EOFError):
        box.poll(0)
