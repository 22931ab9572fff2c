"""Careless and hostile use of mix_folder, pbm mix and pbm demo: links, concurrency, kills, faults (issue 12)."""

import errno
import json
import os
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from pbmlib import mix_folder
from pbmlib._fs import lock, lock_path, write_json_atomic
from pbmlib.pbm import release as folders
from pbmlib.pbm.release import load_private
from pbmlib.workbench.cli import main


def make_src(root, sizes=(("alice", 6), ("bob", 5)), shape=(24, 32, 3), seed=0):
    rng = np.random.default_rng(seed)
    for label, n in sizes:
        (root / label).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / label / f"img{i}.png")
    return root


@pytest.fixture
def src(tmp_path):
    return make_src(tmp_path / "src")


def snapshot(root):
    """Every file's bytes and mode, links resolved as a reader would see them."""
    return {p.relative_to(root): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
            for p in sorted(root.rglob("*")) if p.is_file()}


def release_files(dst):
    return sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file())


# --- data loss and escapes --------------------------------------------------------------------

def test_overwrite_never_writes_into_src_through_a_link_in_dst(src, tmp_path):
    dst = tmp_path / "dst"
    with pytest.warns(UserWarning, match="names='keep'"):
        mix_folder(src, dst, block=(8, 8), seed=0, names="keep")
    before = snapshot(src)
    for label in ("alice", "bob"):  # the earlier output's label folders now point into the source
        for f in (dst / label).iterdir():
            f.unlink()
        (dst / label).rmdir()
        (dst / label).symlink_to(src / label, target_is_directory=True)
    assert main(["mix", str(src), str(dst), "--block", "8x8", "--seed", "1", "--keep-names", "--overwrite",
                 "--quiet"]) == 0
    assert snapshot(src) == before  # not one source byte or mode changed
    assert not (dst / "alice").is_symlink() and len(list((dst / "alice").iterdir())) == 6


def test_links_as_outputs_are_refused(src, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "dst_link").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ValueError, match="dst .* is a symbolic link"):
        mix_folder(src, tmp_path / "dst_link", block=(8, 8))
    (tmp_path / "into_src").symlink_to(src, target_is_directory=True)
    with pytest.raises(ValueError, match="symbolic link"):
        mix_folder(src, tmp_path / "into_src", block=(8, 8), overwrite=True)
    (tmp_path / "key_link").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ValueError, match="private_dir .* is a symbolic link"):
        mix_folder(src, tmp_path / "dst", block=(8, 8), private_dir=tmp_path / "key_link")
    assert not any(elsewhere.iterdir()) and not (tmp_path / "dst").exists()


def test_source_files_living_in_dst_are_refused(tmp_path):
    dst = tmp_path / "dst"
    real = make_src(dst / "store")  # the images really live inside dst ...
    src = tmp_path / "src"
    src.mkdir()
    (src / "alice").symlink_to(real / "alice", target_is_directory=True)  # ... and src links to them
    before = snapshot(real)
    with pytest.raises(ValueError, match="is a link into dst"):
        mix_folder(src, dst, block=(8, 8), overwrite=True)
    assert snapshot(real) == before


def test_dst_given_as_dot_keeps_the_key_beside_it(src, tmp_path, monkeypatch):
    dst = tmp_path / "release"
    dst.mkdir()
    monkeypatch.chdir(dst)
    assert main(["mix", str(src), ".", "--block", "8x8", "--quiet"]) == 0
    assert (tmp_path / "release.private" / "provenance.npz").is_file()
    assert sorted(p.name for p in dst.iterdir()) == ["alice", "bob", "release.json"]


def test_overwrite_replaces_the_whole_earlier_output(tmp_path):
    big = make_src(tmp_path / "big", sizes=(("a", 8), ("b", 8)))
    small = make_src(tmp_path / "small", sizes=(("a", 2), ("b", 2)), seed=1)
    dst = tmp_path / "dst"
    mix_folder(big, dst, block=(8, 8), seed=0)
    assert len(release_files(dst)) == 17
    (dst / "a" / ".img0.png.abcd1234.tmp").write_bytes(b"not written by pbm mix")
    with pytest.raises(ValueError, match=r"holds 1 file\(s\) the earlier pbm mix did not write \(a/.img0.png.abcd1234.tmp\)"):
        mix_folder(small, dst, block=(8, 8), seed=0, overwrite=True)
    (dst / "a" / ".img0.png.abcd1234.tmp").unlink()
    mix_folder(small, dst, block=(8, 8), seed=0, overwrite=True)
    assert release_files(dst) == ["a/000000.png", "a/000001.png", "b/000000.png", "b/000001.png", "release.json"]
    assert len(load_private(tmp_path / "dst.private")[0]["files"]) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big", "dst", "dst.private", "small"]


def test_overwrite_refuses_an_output_of_the_old_layout(src, tmp_path):
    dst = tmp_path / "dst"
    (dst / "alice").mkdir(parents=True)
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(dst / "alice" / "img0.png")
    (dst / "provenance.npz").write_bytes(b"old key")
    write_json_atomic(dst / "manifest.json", {"source": str(src), "files": ["alice/img0.png"],
                                              "provenance": "provenance.npz"})
    with pytest.raises(ValueError, match="is not an earlier pbm mix output"):  # no record of what it wrote
        mix_folder(src, dst, block=(8, 8), overwrite=True)
    assert (dst / "provenance.npz").read_bytes() == b"old key"


def test_a_second_mix_into_the_same_dst_refuses_while_the_first_runs(src, tmp_path, capsys):
    dst = tmp_path / "dst"
    with lock(lock_path(dst.resolve()), what="dst", target=dst.resolve()):  # another pbm mix holds it
        assert main(["mix", str(src), str(dst), "--block", "8x8", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert f"dst {dst.resolve()} is in use by another process (pid {os.getpid()}" in err
        assert err.count("\n") == 1
        assert not dst.exists()
    assert main(["mix", str(src), str(dst), "--block", "8x8", "--quiet"]) == 0  # free again


def test_concurrent_mixes_into_one_dst_do_not_both_succeed(src, tmp_path):
    dst = tmp_path / "dst"
    script = textwrap.dedent("""
        import sys, time
        from pbmlib.pbm import release as folders
        real = folders.write_new_file
        def slow(path, data):
            time.sleep(0.05)
            return real(path, data)
        folders.write_new_file = slow
        from pbmlib.workbench.cli import main
        sys.exit(main(["mix", sys.argv[1], sys.argv[2], "--block", "8x8", "--seed", sys.argv[3], "--quiet",
                       "--overwrite"]))
    """)
    runs = [subprocess.Popen([sys.executable, "-c", script, str(src), str(dst), str(seed)],
                             stderr=subprocess.PIPE, text=True) for seed in (0, 1)]
    results = [(r.wait(timeout=120), r.stderr.read()) for r in runs]
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 0], [0, 2])  # one after the other, or one refused: never a silent mixture
    if codes == [0, 2]:
        assert any("in use by another process" in err for _, err in results)
    key, _ = load_private(tmp_path / "dst.private")
    release = json.loads((dst / "release.json").read_text())
    assert key["release_id"] == release["release_id"] and len(release_files(dst)) == 12


KILLER = textwrap.dedent("""
    import os, sys
    from pbmlib.pbm import release as folders
    real, calls = folders.write_new_file, [0]
    def dying(path, data):
        calls[0] += 1
        if calls[0] == int(sys.argv[3]):
            os._exit(9)  # as if killed: no cleanup runs
        return real(path, data)
    folders.write_new_file = dying
    folders.mix_folder(sys.argv[1], sys.argv[2], block=(8, 8), seed=1, overwrite=True)
""")


def test_a_killed_overwrite_leaves_the_earlier_output_whole_and_the_next_run_cleans_up(src, tmp_path):
    dst = tmp_path / "dst"
    mix_folder(src, dst, block=(8, 8), seed=0)
    before, key_before = snapshot(dst), snapshot(tmp_path / "dst.private")
    killed = subprocess.run([sys.executable, "-c", KILLER, str(src), str(dst), "6"], capture_output=True)
    assert killed.returncode == 9
    assert snapshot(dst) == before and snapshot(tmp_path / "dst.private") == key_before  # seed 0, complete
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers and all(".incomplete-" in name for name in leftovers)  # recognisably incomplete
    mix_folder(src, dst, block=(8, 8), seed=1, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst", "dst.private", "src"]  # stale .tmp removed
    assert load_private(tmp_path / "dst.private")[0]["seed"] == 1


def test_a_swap_cut_between_its_renames_is_put_back(src, tmp_path):
    dst = tmp_path / "dst"
    mix_folder(src, dst, block=(8, 8), seed=0)
    before = snapshot(dst)
    os.rename(dst, tmp_path / ".dst.replaced-0123456789ab.tmp")  # killed after moving the old output aside
    with pytest.raises(ValueError, match="not empty"):
        mix_folder(src, dst, block=(8, 8), seed=1)
    assert snapshot(dst) == before


def test_demo_refuses_a_non_empty_folder(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("my work")
    assert main(["demo", str(out), "--quiet"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["demo", str(out), "--quiet", "--overwrite"]) == 2  # not an earlier demo: never replaced
    assert "not an earlier pbm demo output" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"] and (out / "thesis.tex").read_text() == "my work"
    demo = tmp_path / "demo"
    assert main(["demo", str(demo), "--quiet"]) == 0
    assert main(["demo", str(demo), "--quiet"]) == 2
    (demo / ".ssim_report.json.abcd1234.tmp").write_text("{}")  # left by a killed write
    assert main(["demo", str(demo), "--quiet", "--overwrite", "--seed", "3"]) == 0
    assert not list(tmp_path.rglob("*.tmp"))
    assert json.loads((demo / "ssim_report.json").read_text())["kind"] == "pbm demo"


def test_demo_validates_before_writing(tmp_path, capsys):
    assert main(["demo", str(tmp_path / "d"), "--block", "4x4", "--quiet"]) == 2
    assert "does not divide" in capsys.readouterr().err
    assert main(["demo", str(tmp_path / "d"), "--donors", "0", "--quiet"]) == 2
    assert not (tmp_path / "d").exists()


def test_outputs_get_the_users_normal_permissions(src, tmp_path):
    old = os.umask(0o002)
    try:
        mix_folder(src, tmp_path / "dst", block=(8, 8))
        write_json_atomic(tmp_path / "report.json", {"a": 1})
    finally:
        os.umask(old)
    modes = {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "dst").rglob("*") if p.is_file()}
    assert modes == {0o664}
    assert stat.S_IMODE((tmp_path / "report.json").stat().st_mode) == 0o664  # not mkstemp's 0600
    assert stat.S_IMODE((tmp_path / "dst").stat().st_mode) == 0o775


# --- silent wrong results ---------------------------------------------------------------------

@pytest.mark.parametrize("quality", [-5, 0, 96, 1000, True, 2.5])
def test_jpeg_quality_out_of_range_is_refused_before_writing(src, tmp_path, quality):
    with pytest.raises(ValueError, match="jpeg_quality must be an int from 1 to 95"):
        mix_folder(src, tmp_path / "dst", block=(8, 8), format="jpeg", jpeg_quality=quality)
    assert not (tmp_path / "dst").exists()


def test_cli_jpeg_quality_and_format_checks(src, tmp_path, capsys):
    for quality in ("-5", "0", "1000"):
        assert main(["mix", str(src), str(tmp_path / "d"), "--block", "8x8", "--format", "jpeg",
                     "--jpeg-quality", quality, "--quiet"]) == 2
        assert "--jpeg-quality must be an int from 1 to 95" in capsys.readouterr().err
    assert main(["mix", str(src), str(tmp_path / "d"), "--block", "8x8", "--jpeg-quality", "80", "--quiet"]) == 2
    assert "only applies to --format jpeg" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("kwargs, match", [
    ({"block": (2.5, 8)}, "whole pixels"), ({"block": (5.9, 5.9)}, "whole pixels"),
    ({"block": (8, 8), "rounds": 10**9}, "rounds must be an int from 1 to 1000"),
    ({"block": (8, 8), "n_donors": 10**9}, "n_donors must be an int from 1 to"),
    ({"block": (8, 8), "sise": 8}, "unknown option 'sise' .did you mean 'size'"),
    ({"block": (8, 8), "p": True}, "probability"), ({"block": (8, 8), "seed": True}, "seed must be"),
    ({"block": (8, 8), "seed": "x"}, "seed must be"), ({"block": (8, 8), "n_donors": 0}, "n_donors"),
    ({"block": (8, 8), "format": "gif"}, "format must be one of"), ({"block": (8, 8), "overwrite": "yes"}, "overwrite"),
    ({"block": (8, 8), "size": (2.5, 8)}, "size must be"), ({"block": (8, 8), "mode": "CMYK"}, "mode must be"),
])
def test_mix_folder_checks_every_argument_before_writing(src, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        mix_folder(src, tmp_path / "dst", **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_release_records_the_validated_block(src, tmp_path):
    mix_folder(src, tmp_path / "dst", block=(8.0, np.int64(8)), seed=0)
    release = json.loads((tmp_path / "dst" / "release.json").read_text())
    assert release["parameters"]["block"] == [8, 8] and release["n_blocks"] == 12


def test_generator_seed_is_recorded_and_reproduces_the_release(src, tmp_path):
    result = mix_folder(src, tmp_path / "a", block=(8, 8), seed=np.random.default_rng(0))
    key, _ = load_private(tmp_path / "a.private")
    assert key["seed"] is None and key["generator_state"]["bit_generator"] == "PCG64"
    assert "generator_state" not in json.loads((tmp_path / "a" / "release.json").read_text())
    rng = np.random.Generator(np.random.PCG64())
    rng.bit_generator.state = key["generator_state"]
    again = mix_folder(src, tmp_path / "b", block=(8, 8), seed=rng)
    assert again["outputs"] == result["outputs"]
    for name in result["outputs"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_seed_none_is_drawn_and_recorded(src, tmp_path):
    result = mix_folder(src, tmp_path / "a", block=(8, 8))
    assert isinstance(result["seed"], int) and result["seed_drawn"] is True
    again = mix_folder(src, tmp_path / "b", block=(8, 8), seed=result["seed"])
    assert again["outputs"] == result["outputs"]
    assert all((tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in result["outputs"])


def test_pbm_mix_scales_16_bit_images(tmp_path):
    src = tmp_path / "src"
    for label in ("a", "b"):
        (src / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((20, 40), 20000 + 10000 * i, np.uint16)).save(src / label / f"{i}.png")
    assert main(["mix", str(src), str(tmp_path / "dst"), "--block", "4x4", "--mode", "L", "--quiet"]) == 0
    values = set()
    for p in (tmp_path / "dst").rglob("*.png"):
        values |= set(np.unique(np.asarray(Image.open(p))).tolist())
    assert values <= {78, 117, 156}  # 20000, 30000, 40000 of 65535; --mode L used to make them 255


def test_pbm_mix_applies_exif_orientation(tmp_path):
    src = tmp_path / "src"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 40 wide x 20 high, displayed rotated: 20 wide x 40 high
    for label in ("a", "b"):
        (src / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((20, 40, 3), 50 * i, np.uint8)).save(src / label / f"{i}.jpg", exif=exif)
    assert main(["mix", str(src), str(tmp_path / "dst"), "--block", "4x4", "--quiet"]) == 0
    shapes = {np.asarray(Image.open(p)).shape for p in (tmp_path / "dst").rglob("*.png")}
    assert shapes == {(40, 20, 3)}


# --- raw tracebacks ---------------------------------------------------------------------------

def test_full_disk_is_one_line_naming_the_file_and_nothing_is_left(src, tmp_path, monkeypatch, capsys):
    dst = tmp_path / "dst"
    mix_folder(src, dst, block=(8, 8), seed=0)
    before = snapshot(dst)
    real, calls = folders.write_new_file, [0]

    def full(path, data):
        calls[0] += 1
        if calls[0] == 4:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(folders, "write_new_file", full)
    assert main(["mix", str(src), str(dst), "--block", "8x8", "--overwrite", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pbm mix: error: ") and err.count("\n") == 1
    assert "No space left on device" in err and ".incomplete-" in err and "was not changed" in err
    assert snapshot(dst) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst", "dst.private", "src"]


def test_read_only_destination_is_one_line(src, tmp_path, monkeypatch, capsys):
    def read_only(path, mode=0o777):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(folders.os, "mkdir", read_only)
    assert main(["mix", str(src), str(tmp_path / "dst"), "--block", "8x8", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Permission denied" in err and "choose another dst" in err and err.count("\n") == 1


def test_out_of_memory_is_one_line_exit_1(src, tmp_path, monkeypatch, capsys):
    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(folders, "gather_blocks", no_memory)
    assert main(["mix", str(src), str(tmp_path / "dst"), "--block", "8x8", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pbm mix: error: out of memory") and err.count("\n") == 1
    assert not (tmp_path / "dst").exists()


def test_decompression_bomb_is_one_line_with_the_file_name(src, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    assert main(["mix", str(src), str(tmp_path / "dst"), "--block", "8x8", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "img0.png" in err and "MAX_IMAGE_PIXELS" in err and err.count("\n") == 1


def test_an_internal_error_is_one_line_exit_1(src, tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise TypeError("unexpected thing")

    monkeypatch.setattr(folders, "gather_blocks", broken)
    monkeypatch.delenv("PBM_TRACEBACK", raising=False)
    assert main(["mix", str(src), str(tmp_path / "dst"), "--block", "8x8", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pbm mix: internal error: TypeError: unexpected thing") and err.count("\n") == 1


# --- issue 25: command-line edges ---------------------------------------------------------------

def test_an_unknown_option_is_reported_as_unknown_not_as_a_missing_one(src, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["mix", str(src), str(tmp_path / "d"), "--block-size", "16x16"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --block-size (did you mean --block?)" in err and "required" not in err


def test_errors_speak_in_flags_and_jpg_is_jpeg(tmp_path, capsys):
    mixed = tmp_path / "mixed"
    for label, shape in (("a", (8, 8)), ("b", (8, 12))):
        (mixed / label).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.zeros(shape, np.uint8)).save(mixed / label / f"{i}.png")
    assert main(["mix", str(mixed), str(tmp_path / "d"), "--block", "4x4", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--size HEIGHTxWIDTH" in err and "size=(" not in err and "mode='" not in err
    same = make_src(tmp_path / "same")
    assert main(["mix", str(same), str(tmp_path / "j"), "--block", "8x8", "--format", "jpg", "--quiet"]) == 0
    assert json.loads((tmp_path / "j" / "release.json").read_text())["image_format"]["format"] == "jpeg"


def test_case_8_report_of_a_damaged_record_is_one_line(tmp_path, capsys):
    from pbmlib.workbench import report

    sweep = tmp_path / "sweep"
    (sweep / "sweeps").mkdir(parents=True)
    (sweep / "sweeps" / "20260101T000000Z.json").write_text('{"config": "not a mapping", "versions": 3}')
    assert main(["report", str(sweep)]) == 2  # no analysis notebook: one line, not an AttributeError
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no executed analysis notebook" in err and "internal error" not in err
    assert report._latest_record(sweep) == {}  # the damaged record is left out, not trusted
