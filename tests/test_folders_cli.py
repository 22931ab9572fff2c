import json
import os

import numpy as np
import pytest
from PIL import Image

from pbmlib import load_folder, mix_folder
from pbmlib.workbench.cli import main


@pytest.fixture
def src(tmp_path):
    root = tmp_path / "src"
    rng = np.random.default_rng(0)
    for label, n in (("alice", 6), ("bob", 5)):
        (root / label).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(root / label / f"img{i}.png")
    return root


def snapshot(root):
    return {p.relative_to(root): (p.stat().st_mtime_ns, p.read_bytes()) for p in root.rglob("*") if p.is_file()}


def test_mix_folder_writes_mirror_manifest_and_provenance(src, tmp_path):
    before = snapshot(src)
    dst = tmp_path / "dst"
    manifest = mix_folder(src, dst, block=(8, 8), n_donors=3, rounds=2, seed=4)
    assert snapshot(src) == before  # the source is untouched
    original, mixed = load_folder(src), load_folder(dst)
    assert mixed.files == original.files  # names and label folders kept
    prov = np.load(dst / "provenance.npz")
    sources = prov["sources"]
    assert prov["files"].tolist() == original.files
    # provenance: every output block is the same-position block of a same-label original
    for i in range(len(mixed)):
        for a in range(3):
            for b in range(4):
                s = sources[i, a, b]
                assert original.labels[s] == original.labels[i]
                np.testing.assert_array_equal(mixed.images[i, a * 8:(a + 1) * 8, b * 8:(b + 1) * 8],
                                              original.images[s, a * 8:(a + 1) * 8, b * 8:(b + 1) * 8])
    on_disk = json.loads((dst / "manifest.json").read_text())
    assert on_disk["parameters"]["block"] == [8, 8] and on_disk["seed"] == 4
    assert on_disk["class_sizes"] == {"alice": 6, "bob": 5}
    assert on_disk["n_blocks"] == 12
    assert "numpy" in on_disk["versions"]
    assert manifest["files"] == original.files
    assert not [p for p in dst.rglob("*.tmp")]  # no temporary files left behind


def test_mix_folder_same_seed_same_bytes(src, tmp_path):
    mix_folder(src, tmp_path / "a", block=(8, 8), seed=1)
    mix_folder(src, tmp_path / "b", block=(8, 8), seed=1)
    a = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in (tmp_path / "a").rglob("*.png")}
    b = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in (tmp_path / "b").rglob("*.png")}
    assert a == b and len(a) == 11


def test_mix_folder_resizes_and_writes_jpeg(tmp_path, src):
    for p in src.rglob("*.png"):
        Image.open(p).save(p.with_suffix(".jpg"))
        p.unlink()
    dst = tmp_path / "dst"
    mix_folder(src, dst, size=(16, 16), mode="L", block=(4, 8), seed=0)
    out = load_folder(dst)
    assert out.images.shape == (11, 16, 16)
    assert out.files[0] == "alice/img0.jpg"


def test_mix_folder_refusals(src, tmp_path):
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "keep.txt").write_text("user data")
    with pytest.raises(ValueError, match="not empty.*overwrite=True"):
        mix_folder(src, dst, block=(8, 8))
    mix_folder(src, dst, block=(8, 8), overwrite=True)
    assert (dst / "keep.txt").read_text() == "user data"  # overwrite deletes nothing
    with pytest.raises(ValueError, match="inside src"):
        mix_folder(src, src / "mixed", block=(8, 8))
    with pytest.raises(ValueError, match="block=\\(height, width\\)"):
        mix_folder(src, tmp_path / "new")
    with pytest.raises(ValueError, match="does not divide"):
        mix_folder(src, tmp_path / "new2", block=(5, 8))
    assert not (tmp_path / "new2").exists()  # validation happens before anything is written


def test_interrupted_write_leaves_no_partial_file(src, tmp_path, monkeypatch):
    from pbmlib import _io

    dst = tmp_path / "dst"
    calls = {"n": 0}
    real_replace = os.replace

    def flaky_replace(a, b):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_replace(a, b)

    monkeypatch.setattr(_io.os, "replace", flaky_replace)
    with pytest.raises(KeyboardInterrupt):
        mix_folder(src, dst, block=(8, 8), seed=0)
    written = [p for p in dst.rglob("*") if p.is_file()]
    assert len(written) == 2  # two complete files, no temporary or partial third one
    assert all(p.suffix == ".png" for p in written)
    assert not (dst / "manifest.json").exists()  # an interrupted run does not look finished


def test_cli_mix(src, tmp_path, capsys):
    dst = tmp_path / "out"
    code = main(["mix", str(src), str(dst), "--block", "8x16", "--donors", "2", "--rounds", "3",
                 "--seed", "0", "--quiet"])
    assert code == 0
    assert "mixed 11 images of 2 classes" in capsys.readouterr().out
    assert json.loads((dst / "manifest.json").read_text())["parameters"]["rounds"] == 3
    assert main(["mix", str(src), str(dst), "--block", "8x16", "--quiet"]) == 2
    assert "not empty" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["mix", str(src), str(tmp_path / "x"), "--block", "8by8"])


def test_cli_demo(tmp_path, capsys):
    assert main(["demo", str(tmp_path), "--quiet"]) == 0
    report = json.loads((tmp_path / "ssim_report.json").read_text())
    assert 0 < report["ssim_mean"] < 1 and report["ssim_floor_mean"] < report["ssim_mean"]
    assert report["n_blocks"] == 25 and report["log10_restoration_probability"] < -1000
    assert (tmp_path / "ssim_report.csv").read_text().startswith("class,ssim_mean")
    assert len(list((tmp_path / "mixed").rglob("*.png"))) == 200
    assert "ssim_floor_mean" in capsys.readouterr().out


def test_cli_schemes_by_name(tmp_path, capsys):
    code = main(["schemes", "none", "pbm:block=6x6", "blur:sigma=1.5", "--epochs", "1", "--repeats", "1",
                 "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "pbm block=6x6" in out and "blur sigma=1.5" in out
    table = (tmp_path / "schemes.csv").read_text()
    assert table.startswith("scheme,setting") and table.count("\n") == 4
    with pytest.raises(SystemExit):
        main(["schemes", "rot13"])
