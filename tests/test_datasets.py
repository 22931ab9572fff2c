import socket

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from pbmlib import load_dataset, load_faces, load_fashion_mnist, load_folder, load_mnist, load_wiki
from pbmlib.data.datasets import FASHION_MNIST_DIR


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a loader tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_faces_offline(no_network):
    faces = load_faces()
    assert faces.images.shape == (200, 25, 25) and faces.images.dtype == np.uint8
    assert faces.images.max() > 200
    assert list(np.unique(faces.labels, return_counts=True)[1]) == [100, 100]
    assert faces.classes == ["face", "non-face"]


def test_mnist_offline(no_network):
    digits = load_mnist()
    assert digits.images.shape == (5000, 28, 28) and digits.images.dtype == np.uint8
    assert np.bincount(digits.labels).tolist() == [500] * 10


@pytest.mark.skipif(not FASHION_MNIST_DIR.exists(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_debian_files(no_network):
    test = load_fashion_mnist(split="test")
    assert test.images.shape == (10000, 28, 28)
    assert np.bincount(test.labels).tolist() == [1000] * 10


def test_fashion_mnist_missing_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(directory=tmp_path)


def make_folder(root, sizes=((20, 30),), mode="RGB", per_label=3, suffix=".png"):
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for i in range(per_label):
            h, w = sizes[i % len(sizes)]
            shape = (h, w, 3) if mode == "RGB" else (h, w)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(root / label / f"{i}{suffix}")
    (root / "cat" / "notes.txt").write_text("not an image")


def test_folder_loader(tmp_path):
    make_folder(tmp_path)
    data = load_folder(tmp_path)
    assert data.images.shape == (6, 20, 30, 3)
    assert data.labels.tolist() == ["cat"] * 3 + ["dog"] * 3
    assert data.files[0] == "cat/0.png"
    resized = load_folder(tmp_path, size=(10, 12), mode="L")
    assert resized.images.shape == (6, 10, 12)


def test_folder_mixed_sizes_and_bad_files(tmp_path):
    make_folder(tmp_path, sizes=((20, 30), (21, 30)))
    with pytest.raises(ValueError, match="different sizes.*pass size="):
        load_folder(tmp_path)
    assert load_folder(tmp_path, size=16).images.shape == (6, 16, 16, 3)
    (tmp_path / "dog" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="cannot read image .*broken.jpg"):
        load_folder(tmp_path, size=16)


def test_folder_refuses_unclear_modes(tmp_path):
    make_folder(tmp_path)
    Image.new("RGBA", (30, 20)).save(tmp_path / "cat" / "alpha.png")
    with pytest.raises(ValueError, match="mode='L' or mode='RGB'"):
        load_folder(tmp_path)
    assert load_folder(tmp_path, mode="RGB").images.shape == (7, 20, 30, 3)


def test_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="no images found"):
        load_folder(tmp_path)


def make_wiki(root):
    """A small wiki_crop tree in the distributed layout: wiki.mat (struct 'wiki') + NN/ folders."""
    rng = np.random.default_rng(1)
    paths = ["17/10000217_1981-05-05_2009.jpg", "48/10000548_1925-04-04_1964.jpg",
             "12/100012_1948-07-03_2008.jpg", "65/10001965_1930-05-23_1961.jpg",
             "16/10002116_1971-05-31_2012.jpg", "02/10002702_1960-11-09_2012.jpg"]
    gender = np.array([1.0, 0.0, np.nan, 1.0, 0.0, 1.0])
    face_score = np.array([4.3, 2.6, 3.1, -np.inf, 1.9, 5.0])
    for i, rel in enumerate(paths[:-1]):  # the last entry's file is missing
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        size = (40 + 7 * i, 50 + 3 * i)
        Image.fromarray(rng.integers(0, 256, size + (3,), dtype=np.uint8)).save(root / rel)
    wiki = {
        "dob": np.arange(6) + 723671.0,
        "photo_taken": np.full(6, 2009),
        "full_path": np.array(paths, dtype=object),
        "gender": gender,
        "name": np.array([f"person {i}" for i in range(6)], dtype=object),
        "face_location": np.array([np.array([1.0, 1, 30, 30])] * 6, dtype=object),
        "face_score": face_score,
        "second_face_score": np.full(6, np.nan),
    }
    savemat(root / "wiki.mat", {"wiki": wiki})


def test_wiki_loader(tmp_path):
    make_wiki(tmp_path)
    data = load_wiki(tmp_path, size=(32, 32))
    # kept: gender known, face found, file present
    assert data.files == ["17/10000217_1981-05-05_2009.jpg", "48/10000548_1925-04-04_1964.jpg",
                          "16/10002116_1971-05-31_2012.jpg"]
    assert data.labels.tolist() == ["male", "female", "female"]
    assert data.images.shape == (3, 32, 32, 3)
    assert len(load_wiki(tmp_path, size=16, max_images=2)) == 2
    with pytest.raises(FileNotFoundError, match="wiki.mat"):
        load_wiki(tmp_path / "17")


def test_load_dataset_by_name(tmp_path):
    assert load_dataset("faces", size=(20, 20)).images.shape == (200, 20, 20)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("cifar10")
    make_folder(tmp_path)
    assert len(load_dataset(str(tmp_path))) == 6


# --- hostile and careless inputs (issue 12) ---------------------------------------------------

def test_wiki_paths_are_confined_to_the_root(tmp_path):
    root = tmp_path / "wiki_crop"
    root.mkdir()
    make_wiki(root)
    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(tmp_path / "outside.jpg")  # a file it must not read
    from scipy.io import loadmat

    for bad in ("../outside.jpg", str(tmp_path / "outside.jpg"), "17/../../outside.jpg"):
        wiki = loadmat(root / "wiki.mat", squeeze_me=True, struct_as_record=True)["wiki"]
        fields = {name: wiki[name].item() for name in wiki.dtype.names}
        fields["full_path"] = np.array([bad] + list(fields["full_path"][1:]), dtype=object)
        savemat(root / "wiki.mat", {"wiki": fields})
        with pytest.raises(ValueError, match="leads outside"):
            load_wiki(root, size=16)


def test_wiki_link_out_of_the_root_is_refused(tmp_path):
    root = tmp_path / "wiki_crop"
    root.mkdir()
    make_wiki(root)
    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(tmp_path / "outside.jpg")
    target = root / "17" / "10000217_1981-05-05_2009.jpg"
    target.unlink()
    target.symlink_to(tmp_path / "outside.jpg")
    with pytest.raises(ValueError, match="leads outside"):
        load_wiki(root, size=16)


@pytest.mark.parametrize("gender", [0.5, 2.0, -1.0])
def test_wiki_unknown_genders_are_refused(tmp_path, gender):
    make_wiki(tmp_path)
    from scipy.io import loadmat

    wiki = loadmat(tmp_path / "wiki.mat", squeeze_me=True, struct_as_record=True)["wiki"]
    fields = {name: wiki[name].item() for name in wiki.dtype.names}
    fields["gender"] = np.array([1.0, gender, np.nan, 1.0, 0.0, 1.0])
    savemat(tmp_path / "wiki.mat", {"wiki": fields})
    with pytest.raises(ValueError, match=f"gender {gender}.*expected 0 \\(female\\), 1 \\(male\\) or NaN"):
        load_wiki(tmp_path, size=16)


def test_malformed_wiki_mat_says_what_is_wrong(tmp_path):
    savemat(tmp_path / "wiki.mat", {"imdb": np.zeros(3)})
    with pytest.raises(ValueError, match="holds no 'wiki' struct.*'imdb'"):
        load_wiki(tmp_path)
    savemat(tmp_path / "wiki.mat", {"wiki": {"full_path": np.array(["a.jpg"], dtype=object)}})
    with pytest.raises(ValueError, match="no field 'gender'"):
        load_wiki(tmp_path)
    (tmp_path / "wiki.mat").write_bytes(b"this is not a MATLAB file at all" * 10)
    with pytest.raises(ValueError, match="cannot read .*wiki.mat"):
        load_wiki(tmp_path)


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    from pbmlib.data.datasets import read_image

    wide = (np.arange(20 * 40, dtype=np.uint32).reshape(20, 40) * 80).astype(np.uint16)
    Image.fromarray(wide).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    gray = read_image(tmp_path / "deep.png", mode="L")
    np.testing.assert_array_equal(gray, np.round(wide / 65535 * 255).astype(np.uint8))
    assert (gray == 255).mean() < 0.01  # Pillow's convert("L") clipped 99.5 % of these pixels to 255
    rgb = read_image(tmp_path / "deep.png", mode="RGB")
    np.testing.assert_array_equal(rgb[..., 1], gray)
    with pytest.raises(ValueError, match="16-bit grayscale.*pass mode='L'"):
        read_image(tmp_path / "deep.png")


def test_exif_orientation_is_applied(tmp_path):
    from pbmlib.data.datasets import read_image

    stored = np.zeros((20, 40, 3), np.uint8)  # stored 40 wide x 20 high ...
    stored[:, :20] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # ... and tagged "rotate 90 degrees clockwise to display"
    Image.fromarray(stored).save(tmp_path / "photo.jpg", exif=exif, quality=95)
    shown = read_image(tmp_path / "photo.jpg")
    assert shown.shape == (40, 20, 3)  # displays 20 wide x 40 high
    assert shown[:15].mean() > 200 and shown[25:].mean() < 50  # left half ends up on top


def test_decompression_bomb_names_the_file(tmp_path, monkeypatch):
    from pbmlib.data.datasets import read_image

    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ValueError, match="cannot read image .*big.png.*MAX_IMAGE_PIXELS"):
        read_image(tmp_path / "big.png")


@pytest.mark.parametrize("size", [(2.5, 5), True, (16, True), (0, 4), "16y16", (16, 16, 3)])
def test_bad_sizes_are_refused(tmp_path, size):
    make_folder(tmp_path)
    with pytest.raises(ValueError, match="size must be"):
        load_folder(tmp_path, size=size)


def test_resample_filter_and_three_channel_grey(tmp_path):
    from PIL import Image

    from pbmlib.data.datasets import read_image

    rng = np.random.default_rng(0)
    path = tmp_path / "x.png"
    Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(path)
    bilinear = read_image(path, size=(16, 16))
    lanczos = read_image(path, size=(16, 16), resample="lanczos")
    assert bilinear.shape == lanczos.shape == (16, 16) and not np.array_equal(bilinear, lanczos)
    np.testing.assert_array_equal(lanczos, np.asarray(Image.open(path).resize((16, 16), Image.Resampling.LANCZOS)))
    with pytest.raises(ValueError, match="resample must be one of"):
        read_image(path, size=(16, 16), resample="cubic")
    faces = load_dataset("faces", mode="RGB")
    assert faces.images.shape == (200, 25, 25, 3)
    assert (faces.images[..., 0] == faces.images[..., 2]).all()  # grey copied into three channels
