import numpy as np
import pytest

import pbmlib
from pbmlib.data.augmentation import Augmentation, augment_images, expand_with_augmentation
from pbmlib.learn.layers import augmentation_layers
from pbmlib.learn.models import MODEL_NAMES, build_model
from pbmlib.data.split import stratified_split
from pbmlib.learn.training import encode_targets, train_and_evaluate


@pytest.fixture(scope="module")
def faces_split():
    faces = pbmlib.load_faces()
    train, test = stratified_split(faces.labels, test_fraction=0.3, seed=0)
    return (faces.images[train], faces.labels[train]), (faces.images[test], faces.labels[test])


def test_encode_targets_refuses_unknown_test_labels():
    y_train, y_test, classes = encode_targets(["cat", "dog", "cat"], ["dog"])
    assert classes == ["cat", "dog"] and y_train.tolist() == [0, 1, 0] and y_test.tolist() == [1]
    with pytest.raises(ValueError, match="do not occur"):
        encode_targets(["cat", "dog"], ["bird"])


@pytest.mark.slow
def test_small_cnn_learns_faces_and_repeats_give_mean_std(faces_split):
    train, test = faces_split
    record = train_and_evaluate(train, test, epochs=8, repeats=2, seed=0, model_name="small_cnn")
    assert record["test_accuracy_mean"] > 0.8  # chance is 0.5
    assert len(record["runs"]) == 2 and np.isfinite(record["test_accuracy_std"])
    accs = [r["test_accuracy"] for r in record["runs"]]
    assert record["test_accuracy_mean"] == pytest.approx(np.mean(accs))
    assert record["test_accuracy_std"] == pytest.approx(np.std(accs, ddof=1))
    run = record["runs"][0]
    assert [h["epoch"] for h in run["history"]] == list(range(1, 9))
    assert run["history"][-1]["loss"] < run["history"][0]["loss"]
    assert run["train_images_per_second"] > 0 and run["n_parameters"] > 1000
    assert record["parameters"]["n_test"] == 60 and "keras" in record["versions"]


@pytest.mark.slow
def test_same_seed_same_result(faces_split):
    train, test = faces_split
    small = (train[0][::2], train[1][::2])
    a = train_and_evaluate(small, test, epochs=2, seed=3, model_name="small_cnn")
    b = train_and_evaluate(small, test, epochs=2, seed=3, model_name="small_cnn")
    assert a["runs"][0]["history"] == b["runs"][0]["history"]
    assert a["test_accuracy_mean"] == b["test_accuracy_mean"]


def test_offline_augmentation_changes_training_images_only():
    faces = pbmlib.load_faces()
    x, y = faces.images[:20], faces.labels[:20]
    before = x.copy()
    x_aug, y_aug = expand_with_augmentation(x, y, augmentation=Augmentation(mode="offline", copies=2), seed=0)
    np.testing.assert_array_equal(x, before)  # input untouched
    assert x_aug.shape == (60, 25, 25) and y_aug.tolist() == y.tolist() * 3
    np.testing.assert_array_equal(x_aug[:20], x)
    assert (np.abs(x_aug[20:].astype(int) - np.tile(x, (2, 1, 1))).mean(axis=(1, 2)) > 1).all()
    same = expand_with_augmentation(x, y, augmentation=Augmentation(mode="offline", copies=2), seed=0)[0]
    np.testing.assert_array_equal(same, x_aug)


def test_augment_images_known_transforms():
    x = np.zeros((2, 6, 6, 3), np.uint8)
    x[:, :, 0] = 200  # left column bright
    flipped = augment_images(x, augmentation=Augmentation(flip=True, rotation=0, brightness=0), seed=0)
    for image, out in zip(x, flipped):  # either unchanged or mirrored
        assert np.array_equal(out, image) or np.array_equal(out, image[:, ::-1])
    brighter = augment_images(np.full((50, 4, 4), 100, np.uint8),
                              augmentation=Augmentation(flip=False, rotation=0, brightness=0.5), seed=0)
    assert 50 <= brighter.min() and brighter.max() <= 150 and brighter.std() > 5
    with pytest.raises(ValueError, match="brightness"):
        Augmentation(brightness=1.5)


@pytest.mark.slow
def test_online_augmentation_only_in_training():
    import keras

    layers = augmentation_layers(Augmentation(), seed=0)
    x = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 1)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layers(x, training=False)), x)
    assert not np.allclose(keras.ops.convert_to_numpy(layers(x, training=True)), x)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in MODEL_NAMES if n != "small_cnn"])
def test_paper_models_build_and_take_a_training_step(name):
    import keras

    keras.utils.set_random_seed(0)
    model = build_model(name, input_shape=(25, 25), classes=3)
    assert model.output_shape == (None, 3)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).integers(0, 256, (2, 25, 25, 1)).astype("float32")
    loss = model.train_on_batch(x, np.array([0, 2]))
    assert np.isfinite(loss)


def test_build_model_refusals():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("alexnet", input_shape=(32, 32, 3), classes=2)
    with pytest.raises(ValueError, match="weights=None"):
        build_model("resnet50", input_shape=(32, 32, 3), classes=2, weights="imagenet")


def _toy_set(n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 12, 12), dtype=np.uint8)
    y = np.array(["even", "odd"])[np.arange(n) % 2]
    x[y == "odd", :6] //= 3
    return x, y


def test_train_and_evaluate_refusals(tmp_path):
    x, y = _toy_set()
    with pytest.raises(ValueError, match="train must be a pair"):
        train_and_evaluate(x, (x, y), model_name="small_cnn")
    with pytest.raises(ValueError, match="train labels must have shape"):
        train_and_evaluate((x, y[:10]), (x, y), model_name="small_cnn")
    with pytest.raises(ValueError, match="test_index must"):
        train_and_evaluate((x, y), (x, y), test_index=[len(y)], model_name="small_cnn")
    with pytest.raises(ValueError, match="progress must be"):
        train_and_evaluate((x, y), (x, y), progress="yes", model_name="small_cnn")
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="backup_dir .* is not empty"):
        train_and_evaluate((x, y), (x, y), backup_dir=tmp_path, model_name="small_cnn")


@pytest.mark.slow
def test_rows_by_index_progress_and_a_backup_of_other_settings(tmp_path):
    x, y = _toy_set()
    calls = []
    record = train_and_evaluate((x, y), (x, y), train_index=np.arange(90), test_index=np.arange(90, 120),
                                epochs=2, seed=0, backup_dir=tmp_path / "backup",
                                progress=lambda run, epoch, logs: calls.append((run, epoch, sorted(logs))), model_name="small_cnn")
    assert calls == [(0, 1, ["accuracy", "loss"]), (0, 2, ["accuracy", "loss"])]
    assert record["parameters"]["n_train"] == 90 and record["parameters"]["n_test"] == 30
    copied = train_and_evaluate((x[:90], y[:90]), (x[90:], y[90:]), epochs=2, seed=0, model_name="small_cnn")
    assert copied["runs"][0]["history"] == record["runs"][0]["history"]
    assert record["runs"][0]["resumed_from_epoch"] == 0
    again = train_and_evaluate((x, y), (x, y), train_index=np.arange(90), test_index=np.arange(90, 120),
                               epochs=2, seed=0, backup_dir=tmp_path / "backup", model_name="small_cnn")
    assert again["runs"] == record["runs"]  # the finished run's record, not a new training
    with pytest.raises(ValueError, match="other settings or data"):
        train_and_evaluate((x, y), (x, y), train_index=np.arange(90), test_index=np.arange(90, 120),
                           epochs=3, seed=0, backup_dir=tmp_path / "backup", model_name="small_cnn")
    with pytest.raises(ValueError, match="other settings or data"):
        train_and_evaluate((255 - x, y), (x, y), train_index=np.arange(90),
                           test_index=np.arange(90, 120), epochs=2, seed=0, backup_dir=tmp_path / "backup", model_name="small_cnn")


@pytest.mark.slow
def test_an_interrupted_training_resumes_as_if_never_stopped(tmp_path):
    x, y = _toy_set()
    options = dict(epochs=3, seed=2, augment=Augmentation(mode="online"))  # dropout and augmentation draws too

    class Interrupted(Exception):
        pass

    def stop_after_two(run, epoch, logs):
        if epoch == 2:
            raise Interrupted

    with pytest.raises(Interrupted):  # raised before epoch 2's backup: it is trained again
        train_and_evaluate((x[:90], y[:90]), (x[90:], y[90:]), backup_dir=tmp_path,
                           progress=stop_after_two, **options, model_name="small_cnn")
    resumed = train_and_evaluate((x[:90], y[:90]), (x[90:], y[90:]), backup_dir=tmp_path, **options, model_name="small_cnn")
    plain = train_and_evaluate((x[:90], y[:90]), (x[90:], y[90:]), **options, model_name="small_cnn")
    assert resumed["runs"][0]["resumed_from_epoch"] == 1
    assert resumed["runs"][0]["history"] == plain["runs"][0]["history"]
    assert resumed["test_accuracy_mean"] == plain["test_accuracy_mean"]
