"""Streaming training: float32 batches from uint8 arrays or memmaps, seeded, resumable."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from pbmlib.data.augmentation import Augmentation
from pbmlib.learn.streaming import ImageBatches

REPO = Path(__file__).resolve().parents[1]


def _memmap(tmp_path, images):
    np.save(tmp_path / "images.npy", images)
    return np.load(tmp_path / "images.npy", mmap_mode="r")


def _toy_set(n=200, seed=0):
    """Two classes of 16x16 RGB noise, class 1 darker in its top half (learnable in an epoch)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)
    y = np.arange(n) % 2
    x[y == 1, :8] //= 3
    return x, y


def test_batches_are_float32_of_the_rows_in_order():
    x, y = _toy_set(10)
    batches = ImageBatches(x, y, batch_size=4)
    assert len(batches) == 3 and batches.num_batches == 3
    images, targets = batches[2]
    assert images.dtype == np.float32 and images.shape == (2, 16, 16, 3)
    np.testing.assert_array_equal(images, x[8:].astype(np.float32))
    np.testing.assert_array_equal(targets, y[8:])
    gray = ImageBatches(x[..., 0], batch_size=4)[0]
    assert len(gray) == 1 and gray[0].shape == (4, 16, 16, 1)
    with pytest.raises(IndexError):
        batches[3]


def test_index_selects_rows_without_copying(tmp_path):
    x, y = _toy_set(10)
    mm = _memmap(tmp_path, x)
    batches = ImageBatches(mm, y, index=[7, 2, 5], batch_size=2)
    assert np.shares_memory(batches.images, mm) and batches.n_images == 3
    np.testing.assert_array_equal(batches[0][0], x[[7, 2]].astype(np.float32))
    np.testing.assert_array_equal(batches[1][1], y[[5]])


def test_shuffle_same_seed_same_batches_new_order_each_epoch():
    x, y = _toy_set(50)
    make = lambda seed: ImageBatches(x, y, batch_size=8, shuffle=True, repeat=True, seed=seed)
    a, b, c = make(3), make(3), make(4)
    assert a.num_batches is None and len(a) == 7
    for item in (0, 6, 7, 20):
        np.testing.assert_array_equal(a[item][0], b[item][0])
    epoch0 = np.concatenate([a.positions(i) for i in range(7)])
    epoch1 = np.concatenate([a.positions(i) for i in range(7, 14)])
    assert sorted(epoch0) == list(range(50)) and sorted(epoch1) == list(range(50))
    assert not np.array_equal(epoch0, epoch1)
    assert not np.array_equal(epoch0, np.concatenate([c.positions(i) for i in range(7)]))
    resumed = ImageBatches(x, y, batch_size=8, shuffle=True, repeat=True, seed=3, first_epoch=1)
    np.testing.assert_array_equal(resumed[0][0], a[7][0])  # epoch 1 of a restarted training


def test_offline_augmentation_is_streamed_and_fixed_per_copy():
    x, y = _toy_set(12)
    aug = Augmentation(mode="offline", copies=2)
    batches = ImageBatches(x, y, batch_size=5, shuffle=True, repeat=True, augment=aug, seed=0)
    assert batches.n_images == 36 and len(batches) == 8

    def images_by_position(first):
        found = {}
        for item in range(first, first + len(batches)):
            for p, image in zip(batches.positions(item), batches[item][0]):
                found[int(p)] = image
        return found

    epoch0, epoch1 = images_by_position(0), images_by_position(len(batches))
    assert sorted(epoch0) == list(range(36))
    for p in range(36):  # copy k of image j is the same in every epoch
        np.testing.assert_array_equal(epoch0[p], epoch1[p])
    for j in range(12):
        np.testing.assert_array_equal(epoch0[j], x[j].astype(np.float32))  # originals untouched
        assert not np.array_equal(epoch0[12 + j], epoch0[24 + j])  # two different copies
        assert np.abs(epoch0[12 + j] - x[j]).mean() > 1
    targets = np.concatenate([batches[i][1] for i in range(len(batches))])
    positions = np.concatenate([batches.positions(i) for i in range(len(batches))])
    np.testing.assert_array_equal(targets, y[positions % 12])
    again = ImageBatches(x, y, batch_size=5, shuffle=True, repeat=True, augment=aug, seed=0)
    np.testing.assert_array_equal(again[3][0], batches[3][0])


def test_memmap_is_read_a_batch_at_a_time(tmp_path):
    rng = np.random.default_rng(0)
    mm = _memmap(tmp_path, rng.integers(0, 256, (1000, 32, 32, 3), dtype=np.uint8))  # 3 MB; 12 MB in float
    batches = ImageBatches(mm, np.arange(1000) % 2, batch_size=20, shuffle=True, repeat=True, seed=0)
    assert np.shares_memory(batches.images, mm)
    batch_bytes = 20 * 32 * 32 * 3 * 4
    tracemalloc.start()
    try:
        for item in range(len(batches)):
            batches[item]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * batch_bytes and peak < mm.nbytes / 2  # not the set, in float or uint8


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads /proc/self/smaps (Linux)")
def test_memmap_pages_are_not_kept_resident(tmp_path):
    mm = _memmap(tmp_path, np.random.default_rng(0).integers(0, 256, (2000, 64, 64, 3), dtype=np.uint8))  # 24 MB
    path = str(tmp_path / "images.npy")

    def resident_kb():
        total, inside = 0, False
        with open("/proc/self/smaps") as fh:
            for line in fh:
                if "-" in line.split(" ", 1)[0] and not line.startswith(("Rss", "Pss")):
                    inside = line.rstrip().endswith(path)
                elif inside and line.startswith("Rss:"):
                    total += int(line.split()[1])
        return total

    batches = ImageBatches(mm, batch_size=32)
    for item in range(len(batches)):
        batches[item]
    assert resident_kb() < 2048  # of 24,000 kB read through
    np.asarray(mm).sum()  # an ordinary read keeps its pages: the measure works
    assert resident_kb() > 20000


def test_refusals():
    x, y = _toy_set(10)
    with pytest.raises(ValueError, match="needs repeat=True"):
        ImageBatches(x, y, shuffle=True)
    with pytest.raises(ValueError, match="index must"):
        ImageBatches(x, y, index=[0, 10])
    with pytest.raises(ValueError, match="targets must have shape"):
        ImageBatches(x, y[:5])
    with pytest.raises(ValueError, match="mode='offline'"):
        ImageBatches(x, y, augment=Augmentation(mode="online"))
    with pytest.raises(ValueError, match="first_epoch"):
        ImageBatches(x, y, first_epoch=-1)
    with pytest.raises(ValueError, match="uint8"):
        ImageBatches(x.astype(np.float32), y)


@pytest.mark.slow
def test_same_seed_same_history_from_a_memmap_or_an_array(tmp_path):
    from pbmlib.learn.training import train_and_evaluate

    x, y = _toy_set()
    mm = _memmap(tmp_path, x)
    options = dict(epochs=2, seed=5, augment=Augmentation(mode="offline"))
    a = train_and_evaluate((x[:150], y[:150]), (x[150:], y[150:]), **options, model_name="small_cnn")
    b = train_and_evaluate((mm, y), (mm, y), train_index=np.arange(150),
                           test_index=np.arange(150, 200), **options, model_name="small_cnn")
    assert a["runs"][0]["history"] == b["runs"][0]["history"]
    assert a["test_accuracy_mean"] == b["test_accuracy_mean"]
    assert b["parameters"]["n_train"] == 150 and b["runs"][0]["n_train_images"] == 300
    c = train_and_evaluate((x[:150], y[:150]), (x[150:], y[150:]), **{**options, "seed": 6}, model_name="small_cnn")
    assert c["runs"][0]["history"] != a["runs"][0]["history"]


_TRAINING_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    from pbmlib.learn.training import train_and_evaluate

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (200, 16, 16, 3), dtype=np.uint8)
    y = np.arange(200) % 2
    x[y == 1, :8] //= 3
    backup_dir, pause, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    options = dict(epochs=4, seed=1, batch_size=16)
    record = train_and_evaluate((x[:150], y[:150]), (x[150:], y[150:]), backup_dir=backup_dir,
                                progress=lambda run, epoch, logs: time.sleep(pause), **options, model_name="small_cnn")
    reference = train_and_evaluate((x[:150], y[:150]), (x[150:], y[150:]), **options, model_name="small_cnn")
    with open(out, "w") as fh:
        json.dump({"resumed": record, "reference": reference}, fh)
""")


@pytest.mark.slow
def test_a_killed_training_resumes_from_its_last_epoch(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(_TRAINING_SCRIPT)
    backup, out = tmp_path / "backup", tmp_path / "out.json"
    metadata = backup / "run_0" / "keras_backup" / "training_metadata.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    first = subprocess.Popen([sys.executable, str(script), str(backup), "5", str(out)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while True:  # the first epoch's backup, complete
            assert time.monotonic() < deadline and first.poll() is None, "no backup appeared"
            try:
                if json.loads(metadata.read_text())["epoch"] >= 1:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.wait()
    assert not out.exists() and not (backup / "run_0" / "record.json").exists()
    second = subprocess.run([sys.executable, str(script), str(backup), "0", str(out)], env=env,
                            capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    result = json.loads(out.read_text())
    resumed, reference = result["resumed"]["runs"][0], result["reference"]["runs"][0]
    assert resumed["resumed_from_epoch"] >= 1
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3, 4]
    assert resumed["history"] == reference["history"]  # as if never killed
    assert resumed["test_accuracy"] == reference["test_accuracy"]
    assert (backup / "run_0" / "record.json").exists() and not (backup / "run_0" / "keras_backup").exists()
