"""The baseline cache: trained once, reused, never for other settings, one training under parallel runs."""

import threading
import time

import numpy as np

from pbmlib.learn.baseline_cache import BaselineCache, baseline_key


def data(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (6, 4, 4), dtype=np.uint8), np.arange(6) % 2), \
        (rng.integers(0, 256, (2, 4, 4), dtype=np.uint8), np.arange(2))


def test_hit_and_miss(tmp_path):
    cache = BaselineCache(tmp_path)
    train, test = data()
    key = baseline_key(train, test, settings={"epochs": 1, "seed": 0})
    calls = []
    first, reused = cache.get_or_train(key, lambda: calls.append(1) or {"test_accuracy_mean": 0.5})
    again, reused_again = cache.get_or_train(key, lambda: calls.append(1) or {"test_accuracy_mean": 0.9})
    assert (reused, reused_again, calls) == (False, True, [1]) and again == first
    assert baseline_key(train, test, settings={"epochs": 2, "seed": 0}) != key  # other settings: another entry
    assert baseline_key(*data(1), settings={"epochs": 1, "seed": 0}) != key  # other images: another entry
    other_labels = ((train[0], train[1][::-1]), test)
    assert baseline_key(*other_labels, settings={"epochs": 1, "seed": 0}) != key
    assert not list(tmp_path.glob("*.lock")) and not list(tmp_path.glob("*.tmp"))


def test_parallel_runs_train_once(tmp_path):
    train, test = data()
    key = baseline_key(train, test, settings={"seed": 0})
    calls, results = [], []

    def slow_training():
        calls.append(1)
        time.sleep(1.0)
        return {"test_accuracy_mean": 0.7}

    def run():
        results.append(BaselineCache(tmp_path).get_or_train(key, slow_training))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert calls == [1]
    assert sorted(reused for _, reused in results) == [False, True, True]
    assert all(record == {"test_accuracy_mean": 0.7} for record, _ in results)


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    train, test = data()
    key = baseline_key(train, test, settings={})
    import os

    (tmp_path / f"{key}.lock").write_text(f"999999999 {os.uname().nodename}\n")
    record, reused = BaselineCache(tmp_path, wait_seconds=5).get_or_train(key, lambda: {"ok": 1})
    assert record == {"ok": 1} and not reused
