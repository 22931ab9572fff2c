import json

import numpy as np
import pytest
from PIL import Image

from pbmlib import load_folder, mix_folder
from pbmlib.pbm.release import load_private
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


def test_mix_folder_private_manifest_and_provenance(src, tmp_path):
    before = snapshot(src)
    dst = tmp_path / "dst"
    manifest = mix_folder(src, dst, block=(8, 8), n_donors=3, rounds=2, seed=4)
    assert snapshot(src) == before  # the source is untouched
    original, mixed = load_folder(src), load_folder(dst)
    assert len(mixed) == len(original) and mixed.labels.tolist() == original.labels.tolist()
    key, sources = load_private(tmp_path / "dst.private")
    assert key["files"] == original.files == manifest["files"] and key["seed"] == 4
    assert key["parameters"]["block"] == [8, 8] and key["class_sizes"] == {"alice": 6, "bob": 5}
    assert key["n_blocks"] == 12 and "numpy" in key["versions"]
    order = [mixed.files.index(out) for out in key["outputs"]]
    for i, j in enumerate(order):
        for a in range(3):
            for b in range(4):
                s = sources[i, a, b]
                assert original.labels[s] == original.labels[i]
                np.testing.assert_array_equal(mixed.images[j, a * 8:(a + 1) * 8, b * 8:(b + 1) * 8],
                                              original.images[s, a * 8:(a + 1) * 8, b * 8:(b + 1) * 8])
    assert not [p for p in tmp_path.rglob("*.tmp")]  # no temporary files or folders left behind
    assert not [p for p in tmp_path.rglob("*.lock")]


def test_mix_folder_resizes_and_writes_png_unless_asked(tmp_path, src):
    for p in src.rglob("*.png"):
        Image.open(p).save(p.with_suffix(".jpg"))
        p.unlink()
    dst = tmp_path / "dst"
    mix_folder(src, dst, size=(16, 16), mode="L", block=(4, 8), seed=0)
    out = load_folder(dst)
    assert out.images.shape == (11, 16, 16)
    assert all(f.endswith(".png") for f in out.files)  # lossless by default, whatever the source format


def test_mix_folder_refusals(src, tmp_path):
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "keep.txt").write_text("user data")
    with pytest.raises(ValueError, match="not empty.*overwrite=True"):
        mix_folder(src, dst, block=(8, 8))
    with pytest.raises(ValueError, match="not an earlier pbm mix output"):
        mix_folder(src, dst, block=(8, 8), overwrite=True)
    assert (dst / "keep.txt").read_text() == "user data" and len(list(dst.iterdir())) == 1
    with pytest.raises(ValueError, match="inside src"):
        mix_folder(src, src / "mixed", block=(8, 8))
    with pytest.raises(ValueError, match="block=\\(height, width\\)"):
        mix_folder(src, tmp_path / "new")
    with pytest.raises(ValueError, match="does not divide"):
        mix_folder(src, tmp_path / "new2", block=(5, 8))
    assert not (tmp_path / "new2").exists()  # validation happens before anything is written
    assert not (tmp_path / "new2.private").exists()


def test_interrupted_write_leaves_no_partial_output(src, tmp_path, monkeypatch):
    from pbmlib.pbm import release as folders

    dst = tmp_path / "dst"
    calls = {"n": 0}
    real_write = folders.write_new_file

    def flaky_write(path, data):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real_write(path, data)

    monkeypatch.setattr(folders, "write_new_file", flaky_write)
    with pytest.raises(KeyboardInterrupt):
        mix_folder(src, dst, block=(8, 8), seed=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no output, no staging folder, no lock


def test_cli_mix(src, tmp_path, capsys):
    dst = tmp_path / "out"
    code = main(["mix", str(src), str(dst), "--block", "8x16", "--donors", "2", "--rounds", "3",
                 "--seed", "0", "--quiet"])
    assert code == 0
    assert "mixed 11 images of 2 classes" in capsys.readouterr().out
    assert json.loads((dst / "release.json").read_text())["parameters"]["rounds"] == 3
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
    # PBM keeps blocks at their positions: counting identical blocks finds nearly every original
    assert report["reid_blocks_top1"] > 0.9 and report["reid_chance_top1"] == 1 / 200
    out = capsys.readouterr().out
    assert "ssim_floor_mean" in out and "chance 0.5 %" in out


@pytest.mark.slow
def test_cli_schemes_by_name(tmp_path, capsys):
    code = main(["schemes", "none", "pbm:block=6x6", "blur:sigma=1.5", "--epochs", "1", "--repeats", "1",
                 "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "pbm block=6x6" in out and "blur sigma=1.5" in out
    from pbmlib.workbench.results import read_results

    rows = read_results(tmp_path / "results.json")["rows"]
    assert [row["setting"] for row in rows] == ["none", "pbm block=6x6", "blur sigma=1.5"]
    assert rows[1]["worst_reid_top1"] is not None and rows[0]["test_accuracy_mean"] is not None
    assert (tmp_path / "study.csv").read_text().count("\n") == 4
    with pytest.raises(SystemExit):
        main(["schemes", "rot13"])


def test_cli_refuses_abbreviations_and_suggests_the_option(capsys):
    for argv, hint in ((["compare", "--repeat", "3"], "did you mean --repeats?"),
                       (["compre"], "did you mean compare?")):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2 and hint in capsys.readouterr().err


def test_streamed_folder_mixing_gives_mix_blocks_bytes_whatever_the_chunk_and_workers(src, tmp_path, monkeypatch):
    from pbmlib.pbm import release as folders
    from pbmlib.pbm.mixing import gather_blocks

    originals = load_folder(src)
    monkeypatch.setattr(folders, "_BATCH_IMAGES", 3)  # three images per batch (with one worker): four batches
    results = {}
    for workers in (1, 2):
        dst = tmp_path / f"dst{workers}"
        manifest = mix_folder(src, dst, block=(8, 8), n_donors=3, seed=4, workers=workers)
        mixed = load_folder(dst)
        output_of = dict(zip(manifest["files"], manifest["outputs"]))
        by_source = {name: mixed.images[mixed.files.index(output_of[name])] for name in originals.files}
        results[workers] = np.stack([by_source[name] for name in originals.files])
        assert not (tmp_path / f"dst{workers}.private" / "decoding").exists()  # the decoded originals are gone
    np.testing.assert_array_equal(results[1], results[2])
    _, sources = load_private(tmp_path / "dst1.private")  # chunk by chunk = the whole gather at once
    np.testing.assert_array_equal(results[1], gather_blocks(originals.images, sources))


@pytest.mark.slow
def test_mixing_a_folder_on_a_dask_cluster_gives_the_same_bytes(src, tmp_path):
    from distributed import Client, LocalCluster

    here = mix_folder(src, tmp_path / "here", block=(8, 8), n_donors=3, seed=5)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        there = mix_folder(src, tmp_path / "there", block=(8, 8), n_donors=3, seed=5, client=client)
    assert here["outputs"] == there["outputs"]
    for name in here["outputs"]:
        assert (tmp_path / "here" / name).read_bytes() == (tmp_path / "there" / name).read_bytes()
    assert not (tmp_path / "there.private" / "decoding").exists()
