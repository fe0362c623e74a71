"""The compute releases the GIL, and Ctrl-C stops a long run."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

import medsim as ms

MODEL = dict(outcome="log_ci", treatment="dei", mediator="agglom", controls=["ln_gdp", "industry", "fdi"],
             unit="city", time="year", ci="percentile", backend="cpu", threads=1)


def _timed(fn):
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def test_two_threads_run_at_once(panel):
    # One engine thread each, so that two runs at once can use two cores
    # only if neither holds the GIL while it computes.
    if (os.cpu_count() or 1) < 2:
        pytest.fail("this test needs two cores")
    run = lambda: ms.mediate(panel, **MODEL, reps=300_000, seed=1)
    run()  # warm: the first call pays for page faults and the pools
    one = min(_timed(run) for _ in range(2))
    threads = [threading.Thread(target=run) for _ in range(2)]

    def both():
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    two = _timed(both)
    # Held GIL: two ~ 2 x one. Released: two ~ one (on two free cores).
    print(f"one run {one:.2f} s, two at once {two:.2f} s")
    assert two < 1.6 * one, f"one run {one:.2f} s, two at once {two:.2f} s"


def test_ctrl_c_interrupts_a_long_run(panel):
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    started = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        # About a minute on one core if nothing stopped it.
        ms.mediate(panel, **MODEL, reps=20_000_000, seed=1)
    elapsed = time.perf_counter() - started
    timer.cancel()
    assert elapsed < 5, f"stopped after {elapsed:.1f} s"
    # The interpreter and the package are still usable.
    assert ms.mediate(panel, **MODEL, reps=100).effects["indirect"]["estimate"] > 0


LONG_STUDY = """name = "long"
[simulation]
dgp = "iid"
n = [200]
a = 0.39
b = 0.39
datasets = 1000000
replicates = 999
methods = ["percentile"]
seed = 1
"""


def test_ctrl_c_interrupts_a_simulation_study(tmp_path):
    # The datasets run on worker threads, where Python cannot see the
    # signal: the calling thread watches for it and stops them.
    config = tmp_path / "long.toml"
    config.write_text(LONG_STUDY)
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    started = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        ms.simulate(config, threads=2)  # hours if nothing stopped it
    elapsed = time.perf_counter() - started
    timer.cancel()
    assert elapsed < 5, f"stopped after {elapsed:.1f} s"
    assert not list(tmp_path.glob("results*")), "an interrupted study wrote nothing"
