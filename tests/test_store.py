"""The on-disk uint8 store: decoded once, reused while unchanged, rebuilt when not, never half-written."""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pbmlib.data import store as store_module
from pbmlib.data.datasets import load_folder
from pbmlib.data.store import build_store, load_store, open_store, stale_reason, store_manifest

REPO = Path(__file__).resolve().parents[1]


def _write_folder(root: Path, *, n_per_class=(4, 3, 5), shape=(12, 10, 3), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    for label, n in zip("abc", n_per_class):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / label / f"{i:03d}.png")
    return root


def test_store_holds_the_folder_as_a_read_only_memmap(tmp_path):
    src = _write_folder(tmp_path / "src")
    data = load_store(src, tmp_path / "store", workers=1)
    expected = load_folder(src)
    np.testing.assert_array_equal(data.images, expected.images)
    assert data.labels.tolist() == expected.labels.tolist() and data.files == expected.files
    assert isinstance(data.images.base, np.memmap) and not data.images.flags.writeable
    manifest = store_manifest(tmp_path / "store")
    assert manifest["source"] == str(src.resolve()) and manifest["n_images"] == 12
    assert manifest["image_shape"] == [12, 10, 3] and manifest["size"] is None and manifest["mode"] is None
    assert manifest["resample"] == "bilinear" and manifest["classes"] == ["a", "b", "c"]
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["files.json", "images.npy", "labels.npy",
                                                                     "store.json"]


def test_reused_when_unchanged_rebuilt_when_options_change(tmp_path):
    src, dst = _write_folder(tmp_path / "src"), tmp_path / "store"
    load_store(src, dst, size=8, mode="L", workers=1)
    built = store_manifest(dst)["build_id"]
    assert stale_reason(src, dst, size=(8, 8), mode="L") is None
    assert load_store(src, dst, size=(8, 8), mode="L").images.shape == (12, 8, 8)
    assert store_manifest(dst)["build_id"] == built  # reused
    assert "size" in stale_reason(src, dst, size=(6, 8), mode="L")
    assert "mode" in stale_reason(src, dst, size=8, mode="RGB")
    rgb = load_store(src, dst, size=8, mode="RGB", workers=1)
    assert rgb.images.shape == (12, 8, 8, 3) and store_manifest(dst)["build_id"] != built


def test_rebuilt_when_the_source_folder_changes(tmp_path):
    src, dst = _write_folder(tmp_path / "src"), tmp_path / "store"
    old = load_store(src, dst, workers=1)
    first = old.images[0].copy()
    changed = src / "a" / "000.png"  # same name and size, new pixels and time
    Image.fromarray(255 - first).save(changed)
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert "changed" in stale_reason(src, dst)
    new = load_store(src, dst, workers=1)
    np.testing.assert_array_equal(new.images[0], 255 - first)
    np.testing.assert_array_equal(old.images[0], first)  # an open memmap of the old store stays valid
    Image.fromarray(first).save(src / "c" / "new.png")  # a file added
    assert "changed" in stale_reason(src, dst)
    assert len(load_store(src, dst, workers=1)) == 13
    (src / "b" / "000.png").unlink()  # a file removed
    assert len(load_store(src, dst, workers=1)) == 12
    copy = tmp_path / "copy"
    os.rename(src, copy)
    _write_folder(src)
    assert stale_reason(copy, dst).startswith("it was made from")


def test_incomplete_or_damaged_stores_are_never_used(tmp_path):
    src, dst = _write_folder(tmp_path / "src"), tmp_path / "store"
    load_store(src, dst, workers=1)
    with open(dst / "images.npy", "r+b") as fh:  # truncated
        fh.truncate(os.path.getsize(dst / "images.npy") - 10)
    assert "damaged" in stale_reason(src, dst)
    with pytest.raises(ValueError, match="damaged"):
        open_store(dst)
    np.testing.assert_array_equal(load_store(src, dst, workers=1).images, load_folder(src).images)
    (dst / "store.json").unlink()
    assert "store.json is missing" in stale_reason(src, dst)
    with pytest.raises(ValueError, match="not a complete image store"):
        open_store(dst)
    with pytest.raises(ValueError, match="is not an image store"):  # not replaced: it may be someone's folder
        load_store(src, dst, workers=1)


_KILLED_BUILD = textwrap.dedent("""
    import sys, time
    from pbmlib.data import store
    read = store.read_image
    def slow(*args, **kwargs):
        time.sleep(0.5)
        return read(*args, **kwargs)
    store.read_image = slow
    store.build_store(sys.argv[1], sys.argv[2], workers=1, chunk_size=2)
""")


@pytest.mark.slow
def test_a_build_killed_while_converting_leaves_no_store(tmp_path):
    src, dst = _write_folder(tmp_path / "src"), tmp_path / "store"
    script = tmp_path / "build.py"
    script.write_text(_KILLED_BUILD)
    proc = subprocess.Popen([sys.executable, str(script), str(src), str(dst)],
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".store.incomplete-*/images.npy")):
            assert time.monotonic() < deadline and proc.poll() is None, "the build did not start"
            time.sleep(0.02)
        time.sleep(1.0)  # some rows written, most not
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert not dst.exists() and len(list(tmp_path.glob(".store.incomplete-*"))) == 1
    assert "does not exist" in stale_reason(src, dst)
    data = load_store(src, dst, workers=1)
    np.testing.assert_array_equal(data.images, load_folder(src).images)
    assert not list(tmp_path.glob(".store.incomplete-*"))  # the dead build's folder is gone


@pytest.mark.slow
def test_processes_write_the_same_store(tmp_path):
    src = _write_folder(tmp_path / "src", n_per_class=(9, 7, 8))
    one = build_store(src, tmp_path / "one", size=(6, 5), workers=1)
    two = build_store(src, tmp_path / "two", size=(6, 5), workers=2, chunk_size=3)
    assert two["workers"] == 2 and one["fingerprint"] == two["fingerprint"]
    np.testing.assert_array_equal(open_store(tmp_path / "one").images, open_store(tmp_path / "two").images)


def test_a_full_disk_fails_in_one_line_naming_the_store(tmp_path, monkeypatch):
    src, dst = _write_folder(tmp_path / "src"), tmp_path / "store"

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.os, "posix_fallocate", full, raising=False)
    with pytest.raises(OSError, match="no space left") as info:
        load_store(src, dst, workers=1)
    assert str(dst) in str(info.value) and "\n" not in str(info.value)
    assert not dst.exists() and not list(tmp_path.glob(".store.*-*"))


def test_images_of_different_shapes_need_a_size(tmp_path):
    src = _write_folder(tmp_path / "src")
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(src / "b" / "small.png")
    with pytest.raises(ValueError, match=r"small\.png.*differs.*size="):
        load_store(src, tmp_path / "store", workers=1)
    assert not (tmp_path / "store").exists() and not list(tmp_path.glob(".store.*-*"))
    assert load_store(src, tmp_path / "store", size=(12, 10), workers=1).images.shape == (13, 12, 10, 3)


def test_refusals(tmp_path):
    src = _write_folder(tmp_path / "src")
    with pytest.raises(ValueError, match="size must be"):
        load_store(src, tmp_path / "s", size=(0, 4))
    with pytest.raises(ValueError, match="mode must be"):
        load_store(src, tmp_path / "s", mode="CMYK")
    with pytest.raises(ValueError, match="workers must be"):
        build_store(src, tmp_path / "s", workers=0)
    with pytest.raises(ValueError, match="chunk_size must be"):
        build_store(src, tmp_path / "s", chunk_size=0)
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not an image store"):
        build_store(src, other)
    assert (other / "notes.txt").read_text() == "keep me"
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "store.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="not an image store"):
        open_store(tmp_path / "s")


def test_case_9_a_replaced_file_of_the_same_size_and_mtime_is_never_served_stale(tmp_path):
    """Issue 20 case 9: the fingerprint was names, sizes and mtimes only."""
    src, dst = tmp_path / "src", tmp_path / "store"
    rng = np.random.default_rng(0)
    for label in "ab":
        (src / label).mkdir(parents=True)
        for i in range(3):  # BMP: the file size depends on the shape only
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(src / label / f"{i}.bmp")
    first = load_store(src, dst, workers=1).images.copy()
    victim = src / "a" / "0.bmp"
    st = victim.stat()
    other = np.asarray(Image.open(victim)).copy()
    other[0, 0] ^= 0xFF  # one pixel changed
    replacement = tmp_path / "replacement.bmp"
    Image.fromarray(other).save(replacement)
    assert replacement.stat().st_size == st.st_size
    os.replace(replacement, victim)
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))  # the modification time put back
    assert victim.stat().st_mtime_ns == st.st_mtime_ns
    assert "replaced" in stale_reason(src, dst)
    again = load_store(src, dst, workers=1).images
    assert not np.array_equal(again, first) and np.array_equal(again, load_folder(src).images)


def test_content_hash_reuses_a_store_only_for_identical_bytes(tmp_path):
    src, dst = _write_folder(tmp_path / "src"), tmp_path / "store"
    load_store(src, dst, workers=1)
    assert "without the files' content" in stale_reason(src, dst, content_hash=True)
    load_store(src, dst, workers=1, content_hash=True)
    assert store_manifest(dst)["content_hash"] is True and stale_reason(src, dst, content_hash=True) is None
    assert stale_reason(src, dst) is None  # a content-hashed store serves plain callers too
