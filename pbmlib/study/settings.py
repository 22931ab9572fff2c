"""The settings of a study: how to train, what to run, and the targets a setting must meet.

Frozen and validated once (:class:`pbmlib._validation.Settings`), then carried whole
through :func:`pbmlib.study.run_study`, the trainer, the notebooks and the sweep planner.
The attacks' settings are :class:`pbmlib.privacy.audit.AttackSettings`.
"""

from __future__ import annotations

import dataclasses

from .._validation import Settings, check_bool, check_choice, check_positive_int, check_real

__all__ = ["TrainingSettings", "StudySettings", "MODEL_NAMES", "OPTIMIZERS"]

#: The classifiers :func:`pbmlib.learn.models.build_model` builds (named here so nothing needs Keras to check one).
MODEL_NAMES = ("small_cnn", "resnet50", "vgg16", "inceptionv3", "densenet121")
OPTIMIZERS = ("adam", "sgd", "rmsprop")


@dataclasses.dataclass(frozen=True)
class TrainingSettings(Settings):
    """How every classifier of a study is trained.

    Parameters
    ----------
    model_name : str, default="small_cnn"
        One of :data:`MODEL_NAMES` (the paper's four, ``weights=None``, or a small CNN).
    epochs : int, default=10
    batch_size : int, default=32
    optimizer : {"adam", "sgd", "rmsprop"}, default="adam"
    learning_rate : float, optional
        Keras' default for the optimizer when None.
    repeats : int, default=1
        Trainings per condition and split (different seeds; the paper trains 5).
    """

    model_name: str = "small_cnn"
    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "adam"
    learning_rate: float | None = None
    repeats: int = 1

    def __post_init__(self):
        set_field = object.__setattr__
        check_choice(self.model_name, MODEL_NAMES, name="model_name")
        set_field(self, "epochs", check_positive_int(self.epochs, name="epochs"))
        set_field(self, "batch_size", check_positive_int(self.batch_size, name="batch_size"))
        check_choice(self.optimizer, OPTIMIZERS, name="optimizer")
        if self.learning_rate is not None:
            set_field(self, "learning_rate", check_real(self.learning_rate, name="learning_rate", low=0.0,
                                                        low_open=True))
        set_field(self, "repeats", check_positive_int(self.repeats, name="repeats"))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class StudySettings(Settings):
    """What a study runs on each split, and the target every setting is judged against.

    Parameters
    ----------
    train : bool, default=True
        Train a classifier on every protected set (the utility axis).
    audit : bool, default=False
        Audit every unaugmented protected set (:func:`pbmlib.privacy.audit.audit`): the
        privacy axis.
    model_membership : bool, default=False
        With ``train``: the membership attack on the trained models (loss threshold).
    n_splits : int, default=1
        Independent splits (and scheme seeds and training seeds); figures are means over
        them and intervals resample within each.
    test_fraction : float, default=0.3
        Share of every class held out: the clean test set, the audit's non-members and
        the attacker's public images.
    max_membership_auc, max_reid_top1, max_accuracy_drop : float
        The target (membership AUC < 0.6, re-identification < 0.2, cost <= 5 points):
        decided per setting only where the intervals decide it.
    """

    train: bool = True
    audit: bool = False
    model_membership: bool = False
    n_splits: int = 1
    test_fraction: float = 0.3
    max_membership_auc: float = 0.6
    max_reid_top1: float = 0.2
    max_accuracy_drop: float = 5.0

    def __post_init__(self):
        set_field = object.__setattr__
        for name in ("train", "audit", "model_membership"):
            set_field(self, name, check_bool(getattr(self, name), name=name))
        set_field(self, "n_splits", check_positive_int(self.n_splits, name="n_splits"))
        set_field(self, "test_fraction", check_real(self.test_fraction, name="test_fraction", low=0.0, high=1.0,
                                                    low_open=True, high_open=True))
        set_field(self, "max_membership_auc", check_real(self.max_membership_auc, name="max_membership_auc",
                                                         low=0.0, high=1.0))
        set_field(self, "max_reid_top1", check_real(self.max_reid_top1, name="max_reid_top1", low=0.0, high=1.0))
        set_field(self, "max_accuracy_drop", check_real(self.max_accuracy_drop, name="max_accuracy_drop",
                                                        low=0.0, high=100.0))
