"""The release folder holds only what is safe to share; the key (provenance, seed, names) is kept apart."""

import json
import os
import re
import shutil
import stat

import numpy as np
import pytest
from PIL import Image

from pbmlib import load_folder, mix_folder
from pbmlib.pbm import release as folders
from pbmlib.pbm.release import load_private
from pbmlib.workbench.cli import main

SEED = 987654321  # long enough not to appear by chance in a file


@pytest.fixture
def people(tmp_path):
    """A face-like folder whose file names name people, as LFW's do."""
    root = tmp_path / "source_photos_private"
    rng = np.random.default_rng(0)
    names = {"smith": ["Alice_Smith_0001", "Alice_Smith_0002", "Bob_Smith_0001", "Carol_Smith_0001",
                       "Dave_Smith_0001", "Erin_Smith_0001"],
             "jones": ["Frank_Jones_0001", "Grace_Jones_0001", "Heidi_Jones_0002", "Ivan_Jones_0001",
                       "Judy_Jones_0003"]}
    for label, stems in names.items():
        (root / label).mkdir(parents=True)
        for stem in stems:
            Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(root / label / f"{stem}.png")
    return root


def all_files(root):
    return sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink())


def test_release_folder_cannot_map_a_block_to_its_source_or_name_a_source_file(people, tmp_path):
    dst = tmp_path / "release"
    mix_folder(people, dst, block=(8, 8), n_donors=3, rounds=2, seed=SEED)
    sources = sorted(p for p in people.rglob("*.png"))
    secrets = ([p.stem for p in sources] + [p.relative_to(people).as_posix() for p in sources]
               + [str(people), str(people.resolve()), people.name, str(SEED)])
    files = all_files(dst)
    assert files, "the release is empty"
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{path.relative_to(dst)} contains {secret!r}"
            assert secret not in path.relative_to(dst).as_posix()
        # no provenance array and no JSON beyond the parameters
        assert path.suffix != ".npz" and not data.startswith(b"PK"), f"{path} is an archive"
    non_images = [p.relative_to(dst).as_posix() for p in files if p.suffix != ".png"]
    assert non_images == ["release.json"]
    release = json.loads((dst / "release.json").read_text())
    for key in ("seed", "source", "files", "outputs", "labels", "provenance", "sources", "generator_state"):
        assert key not in release, key
    assert release["parameters"] == {"block": [8, 8], "n_donors": 3, "rounds": 2, "p": 0.5, "allow_self": False,
                                     "size": None, "mode": None, "resample": "bilinear"}
    assert release["class_sizes"] == {"jones": 5, "smith": 6} and release["n_blocks"] == 12
    assert release["image_format"] == {"format": "png", "suffix": ".png", "lossless": True, "jpeg_quality": None}
    assert "numpy" in release["versions"]
    # every image sits directly in a label folder, under an opaque number
    for path in files[:-1] if files[-1].name == "release.json" else files:
        if path.suffix == ".png":
            assert path.parent.parent == dst and path.stem.isdigit() and len(path.stem) == 6


def test_private_folder_holds_the_key_beside_the_release(people, tmp_path):
    before = {p: p.read_bytes() for p in people.rglob("*") if p.is_file()}
    dst = tmp_path / "release"
    result = mix_folder(people, dst, block=(8, 8), n_donors=3, rounds=2, seed=SEED)
    assert {p: p.read_bytes() for p in people.rglob("*") if p.is_file()} == before  # the source is untouched
    private = tmp_path / "release.private"  # a sibling, never inside the release or the source
    assert result["private_dir"] == str(private.resolve()) and result["dst"] == str(dst.resolve())
    assert sorted(p.name for p in private.iterdir()) == ["PRIVATE-DO-NOT-SHARE.txt", "manifest.json",
                                                          "provenance.npz"]
    assert stat.S_IMODE(private.stat().st_mode) == 0o700  # the key is the owner's only
    assert "DO NOT SHARE" in (private / "PRIVATE-DO-NOT-SHARE.txt").read_text()
    manifest, sources = load_private(private)
    original = load_folder(people)
    assert manifest["files"] == original.files and manifest["seed"] == SEED
    assert manifest["source"] == str(people.resolve())
    assert manifest["release_id"] == json.loads((dst / "release.json").read_text())["release_id"]
    # the mapping pairs every output with its source; provenance names every block's origin
    for i, (name, output) in enumerate(zip(manifest["files"], manifest["outputs"])):
        mixed = np.asarray(Image.open(dst / output))
        assert output.split("/")[0] == name.split("/")[0]  # same label
        for a in range(3):
            for b in range(4):
                s = sources[i, a, b]
                assert original.labels[s] == original.labels[i]
                np.testing.assert_array_equal(mixed[a * 8:(a + 1) * 8, b * 8:(b + 1) * 8],
                                              original.images[s, a * 8:(a + 1) * 8, b * 8:(b + 1) * 8])


def test_opaque_names_are_a_seeded_permutation_written_in_name_order(people, tmp_path, monkeypatch):
    written = []
    real = folders.write_new_file

    def spy(path, data):
        written.append(os.fspath(path))
        return real(path, data)

    monkeypatch.setattr(folders, "write_new_file", spy)
    a = mix_folder(people, tmp_path / "a", block=(8, 8), seed=1)
    images = [w for w in written if w.endswith(".png")]
    # files are created in the order of their opaque names, so file times and inode numbers say
    # nothing about the source order
    assert images == sorted(images)
    b = mix_folder(people, tmp_path / "b", block=(8, 8), seed=1)
    c = mix_folder(people, tmp_path / "c", block=(8, 8), seed=2)
    assert a["outputs"] == b["outputs"]  # same seed, same names ...
    assert a["outputs"] != c["outputs"]  # ... another seed, another order
    for result in (a, c):
        numbers = [int(o.split("/")[1][:6]) for o in result["outputs"] if o.startswith("smith/")]
        assert sorted(numbers) == list(range(6))
    # neither follows the sorted source order
    assert [int(o.split("/")[1][:6]) for o in a["outputs"]] != [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5]


def test_same_seed_same_release_bytes(people, tmp_path):
    mix_folder(people, tmp_path / "a", block=(8, 8), seed=1)
    mix_folder(people, tmp_path / "b", block=(8, 8), seed=1)
    a = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in (tmp_path / "a").rglob("*.png")}
    b = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in (tmp_path / "b").rglob("*.png")}
    assert a == b and len(a) == 11


def test_keep_names_is_an_opt_in_with_a_warning(people, tmp_path):
    with pytest.warns(UserWarning, match="name the people"):
        mix_folder(people, tmp_path / "kept", block=(8, 8), seed=0, names="keep")
    assert (tmp_path / "kept" / "smith" / "Alice_Smith_0001.png").is_file()
    assert not list((tmp_path / "kept").rglob("*.npz"))
    with pytest.raises(ValueError, match="names must be one of 'opaque', 'keep'"):
        mix_folder(people, tmp_path / "x", block=(8, 8), names="hidden")
    assert not (tmp_path / "x").exists()


def test_keep_names_refuses_two_sources_on_one_output_name(people, tmp_path):
    Image.open(people / "smith" / "Bob_Smith_0001.png").save(people / "smith" / "Bob_Smith_0001.jpg")
    with pytest.raises(ValueError, match="one file smith/Bob_Smith_0001.png"), pytest.warns(UserWarning):
        mix_folder(people, tmp_path / "kept", block=(8, 8), names="keep")
    assert not (tmp_path / "kept").exists()


def test_private_dir_is_kept_apart(people, tmp_path):
    dst = tmp_path / "release"
    with pytest.raises(ValueError, match="inside dst .* shared with the release"):
        mix_folder(people, dst, block=(8, 8), private_dir=dst / "key")
    with pytest.raises(ValueError, match="private_dir .* is inside src"):
        mix_folder(people, dst, block=(8, 8), private_dir=people / "key")
    with pytest.raises(ValueError, match="dst .* is inside private_dir"):
        mix_folder(people, tmp_path / "key" / "release", block=(8, 8), private_dir=tmp_path / "key")
    assert not dst.exists() and not (tmp_path / "key").exists()
    mix_folder(people, dst, block=(8, 8), private_dir=tmp_path / "vault" / "key")
    assert (tmp_path / "vault" / "key" / "provenance.npz").is_file()
    assert not (tmp_path / "release.private").exists()


@pytest.mark.parametrize("fmt, suffix, lossless", [("png", ".png", True), ("webp", ".webp", True),
                                                    ("jpeg", ".jpg", False)])
def test_output_format_and_recorded_quality(people, tmp_path, fmt, suffix, lossless):
    dst = tmp_path / fmt
    result = mix_folder(people, dst, block=(8, 8), seed=0, format=fmt)
    release = json.loads((dst / "release.json").read_text())
    assert release["image_format"] == {"format": fmt, "suffix": suffix, "lossless": lossless,
                                       "jpeg_quality": 95 if fmt == "jpeg" else None}
    manifest, _ = load_private(result["private_dir"])
    for output in manifest["outputs"][:3]:
        assert output.endswith(suffix)
    if lossless:  # png and webp hold exactly the mixed pixels
        original = load_folder(people)
        again = mix_folder(people, tmp_path / "png-again", block=(8, 8), seed=0)
        for output in manifest["outputs"]:
            png = output[: -len(suffix)] + ".png"
            np.testing.assert_array_equal(np.asarray(Image.open(dst / output).convert("RGB")),
                                          np.asarray(Image.open(tmp_path / "png-again" / png)))
        assert again["outputs"][0].endswith(".png") and len(original) == 11


def test_cli_mix_release_and_private_lines(people, tmp_path, capsys):
    dst = tmp_path / "out"
    assert main(["mix", str(people), str(dst), "--block", "8x16", "--donors", "2", "--rounds", "3",
                 "--seed", "0", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "mixed 11 images of 2 classes" in out and "opaque names" in out
    assert f"PRIVATE: {tmp_path / 'out.private'}" in out and "never let it leave the owner" in out.lower()
    assert json.loads((dst / "release.json").read_text())["parameters"]["rounds"] == 3
    assert main(["mix", str(people), str(tmp_path / "kept"), "--block", "8x8", "--keep-names", "--quiet"]) == 0
    assert "pbm mix: warning: names='keep'" in capsys.readouterr().err
    assert main(["mix", str(people), str(tmp_path / "j"), "--block", "8x8", "--format", "jpeg",
                 "--jpeg-quality", "80", "--quiet"]) == 0
    assert "jpeg, quality 80, lossy" in capsys.readouterr().out
    assert json.loads((tmp_path / "j" / "release.json").read_text())["image_format"]["jpeg_quality"] == 80


def test_cli_demo_release_has_no_key_and_scores_through_the_private_mapping(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "PRIVATE:" in printed and str(out / "mixed.private") in printed
    assert sorted(p.name for p in (out / "mixed").iterdir()) == ["face", "non-face", "release.json"]
    assert not list((out / "mixed").rglob("*.npz")) and not (out / "mixed" / "manifest.json").exists()
    assert (out / "mixed.private" / "provenance.npz").is_file()
    report = json.loads((out / "ssim_report.json").read_text())
    # SSIM is computed on correctly paired images: well above its same-class floor, below 1
    assert report["ssim_floor_mean"] + 0.1 < report["ssim_mean"] < 1
    assert report["n_blocks"] == 25 and report["log10_restoration_probability"] < -1000


# --- issue 20: a release that cannot be undone without its key ------------------------------------

def _provenance_from_release(dst, seed):
    """What an attacker holding only the release can rebuild for a guessed seed: labels in the order
    of the sorted source listing (class sizes from release.json) and the parameters."""
    from pbmlib.pbm.mixing import mixing_sources

    release = json.loads((dst / "release.json").read_text())
    labels = [label for label in sorted(release["class_sizes"]) for _ in range(release["class_sizes"][label])]
    parameters = {**release["parameters"], "n_donors": release["n_donors_requested"]}
    mixing = {k: parameters[k] for k in ("block", "n_donors", "rounds", "p", "allow_self")}
    return mixing_sources(labels, release["image_shape"], seed=seed, **mixing)


def test_case_1_the_default_release_cannot_be_rebuilt_from_release_json(people, tmp_path):
    """Case 1: with the old default seed 0 (and any small seed) release.json gave back the provenance."""
    research = tmp_path / "research"
    assert main(["mix", str(people), str(research), "--block", "8x8", "--seed", "42", "--quiet"]) == 0
    _, key = load_private(tmp_path / "research.private")
    found = [s for s in range(200) if np.array_equal(_provenance_from_release(research, s), key)]
    assert found == [42]  # the attack works: a known or small seed is the key
    shared = tmp_path / "shared"
    assert main(["mix", str(people), str(shared), "--block", "8x8", "--quiet"]) == 0  # the default: fresh entropy
    manifest, key = load_private(tmp_path / "shared.private")
    assert manifest["seed_drawn"] is True and manifest["seed"] >= 2**64  # 128 bits from the OS
    assert not any(np.array_equal(_provenance_from_release(shared, s), key) for s in range(200))
    assert np.array_equal(_provenance_from_release(shared, manifest["seed"]), key)  # the private folder rebuilds it
    assert str(manifest["seed"]) not in (shared / "release.json").read_text()


def test_case_1_seed_flag_warns_that_a_known_seed_is_the_key(people, tmp_path, capsys):
    assert main(["mix", str(people), str(tmp_path / "r"), "--block", "8x8", "--seed", "7", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "--seed 7 is the key of this release" in err and err.count("\n") == 1
    assert main(["mix", str(people), str(tmp_path / "s"), "--block", "8x8", "--quiet"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("flags, setting", [
    (["--block", "8x8", "-p", "0"], "p = 0 replaces no block"),
    (["--block", "24x32"], "block 24x32 is the whole image .N_b = 1."),
])
def test_case_2_settings_that_protect_nothing_are_refused(people, tmp_path, capsys, flags, setting):
    dst = tmp_path / "dst"
    assert main(["mix", str(people), str(dst), *flags, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(setting, err) and "--allow-unprotected" in err
    assert not dst.exists() and not (tmp_path / "dst.private").exists()
    assert main(["mix", str(people), str(dst), *flags, "--allow-unprotected", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "NO PROTECTION" in out and "log10 P(restore" not in out
    release = json.loads((dst / "release.json").read_text())
    assert release["protection"].startswith("none: ") and release["log10_restoration_probability"] is None


def test_case_2_classes_of_one_image_are_refused(tmp_path, capsys):
    src = tmp_path / "src"
    for label in ("a", "b", "c"):
        (src / label).mkdir(parents=True)
        Image.fromarray(np.full((8, 8), 9, np.uint8)).save(src / label / "only.png")
    assert main(["mix", str(src), str(tmp_path / "dst"), "--block", "4x4", "--quiet"]) == 2
    assert "every class holds a single image" in capsys.readouterr().err


def test_case_3_private_dir_inside_another_release_is_refused(people, tmp_path):
    mix_folder(people, tmp_path / "first", block=(8, 8))
    for inside in (tmp_path / "first" / "key", tmp_path / "first" / "smith" / "deeper" / "key"):
        with pytest.raises(ValueError, match=r"private_dir .* is inside the release .*first"):
            mix_folder(people, tmp_path / "second", block=(8, 8), private_dir=inside)
    with pytest.raises(ValueError, match=r"dst .* is inside the private key folder"):
        mix_folder(people, tmp_path / "first.private" / "release", block=(8, 8), private_dir=tmp_path / "k")
    assert not (tmp_path / "second").exists()


def test_case_3_overwrite_refuses_to_delete_files_a_user_added(people, tmp_path):
    dst = tmp_path / "dst"
    mix_folder(people, dst, block=(8, 8))
    (dst / "NOTES.txt").write_text("my notes")
    (dst / "extra").mkdir()
    (dst / "extra" / "plot.png").write_bytes(b"mine")
    with pytest.raises(ValueError, match=r"holds 3 file\(s\) the earlier pbm mix did not write "
                                         r"\(NOTES.txt, extra, extra/plot.png\)"):
        mix_folder(people, dst, block=(8, 8), overwrite=True)
    assert (dst / "NOTES.txt").read_text() == "my notes" and (dst / "extra" / "plot.png").read_bytes() == b"mine"
    (tmp_path / "dst.private" / "mine.txt").write_text("x")
    (dst / "NOTES.txt").unlink()
    shutil.rmtree(dst / "extra")
    with pytest.raises(ValueError, match=r"private_dir .* holds 1 file\(s\) .* \(mine.txt\)"):
        mix_folder(people, dst, block=(8, 8), overwrite=True)
    (tmp_path / "dst.private" / "mine.txt").unlink()
    mix_folder(people, dst, block=(8, 8), overwrite=True)


def test_case_7_rounds_and_donors_are_bounded_and_the_used_value_recorded(people, tmp_path, capsys):
    import time

    started = time.perf_counter()
    assert main(["mix", str(people), str(tmp_path / "r"), "--block", "8x8", "--rounds", "1000000000"]) == 2
    assert "--rounds must be an int from 1 to 1000" in capsys.readouterr().err
    assert main(["mix", str(people), str(tmp_path / "r"), "--block", "8x8", "--donors", "1000000000"]) == 2
    assert "--donors must be an int from 1 to 1000000" in capsys.readouterr().err
    assert time.perf_counter() - started < 5 and not (tmp_path / "r").exists()
    assert main(["mix", str(people), str(tmp_path / "r"), "--block", "8x8", "--donors", "50", "--quiet"]) == 0
    assert "--donors 50 capped at 5: the largest class has 6 images" in capsys.readouterr().err
    release = json.loads((tmp_path / "r" / "release.json").read_text())
    assert release["parameters"]["n_donors"] == 5 and release["n_donors_requested"] == 50


def test_case_8_label_folders_that_clash_are_one_line(people, tmp_path, capsys):
    clash = tmp_path / "clash"
    shutil.copytree(people, clash)
    shutil.copytree(people / "smith", clash / "release.json")
    assert main(["mix", str(clash), str(tmp_path / "a"), "--block", "8x8", "--quiet"]) == 2
    assert "label folder named 'release.json'" in capsys.readouterr().err
    shutil.rmtree(clash / "release.json")
    shutil.copytree(people / "smith", clash / "Smith")
    assert main(["mix", str(clash), str(tmp_path / "a"), "--block", "8x8", "--quiet"]) == 2
    assert "'Smith' and 'smith', which differ only in case" in capsys.readouterr().err


def test_case_8_gifs_are_read_and_other_formats_named(people, tmp_path, capsys):
    gifs = tmp_path / "gifs"
    (gifs / "a").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(gifs / "a" / f"{i}.gif")
    assert load_folder(gifs, mode="L").images.shape == (3, 8, 8)
    for f in (gifs / "a").iterdir():
        f.rename(f.with_suffix(".xcf"))
    assert main(["mix", str(gifs), str(tmp_path / "d"), "--block", "4x4", "--quiet"]) == 2
    assert "no images found" in (err := capsys.readouterr().err) and "found 3 .xcf file(s)" in err
    (people / "smith" / "notes.docx").write_bytes(b"x")
    with pytest.warns(UserWarning, match=r"skipped 1 file\(s\) .*1 .docx"):
        load_folder(people)


def test_case_8_zero_sized_images_are_refused():
    from pbmlib import mix_blocks

    with pytest.raises(ValueError, match="zero height, width or channel count"):
        mix_blocks(np.zeros((6, 0, 0, 3), np.uint8), [0] * 6, block=1)


def test_case_11_release_json_has_no_host_or_time(people, tmp_path):
    import platform

    mix_folder(people, tmp_path / "dst", block=(8, 8))
    text = (tmp_path / "dst" / "release.json").read_text()
    release = json.loads(text)
    assert "created" not in release and "platform" not in release["versions"]
    assert platform.platform() not in text and platform.node() not in text
    assert "numpy" in release["versions"]


def test_case_8_a_full_disk_under_the_private_folder_is_one_line_naming_it(people, tmp_path, monkeypatch, capsys):
    """Case 8: a full disk while decoding into the private folder's store said 'need 0 MiB' and blamed dst."""
    import errno

    from pbmlib.data import store as store_module

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.os, "posix_fallocate", full, raising=False)
    assert main(["mix", str(people), str(tmp_path / "dst"), "--block", "8x8", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no space left on the device for the image store" in err
    assert "dst.private" in err and "need 0 " not in err and "--private-dir" in err
    assert not (tmp_path / "dst").exists() and not (tmp_path / "dst.private").exists()
