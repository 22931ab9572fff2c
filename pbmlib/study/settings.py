"""The settings of a study: how to train, what to run, and the targets a setting must meet.

Frozen and validated once (:class:`pbmlib._validation.Settings`), then carried whole
through :func:`pbmlib.study.run_study`, the trainer, the notebooks and the sweep planner.
The attacks' settings are :class:`pbmlib.privacy.audit.AttackSettings`.
"""

from __future__ import annotations

import dataclasses

from .._validation import Settings, check_bool, check_choice, check_int_range, check_positive_int, check_real

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
        With ``train``: membership inference on the trained models, LiRA [1]_ with
        ``shadow_models`` shadow models beside the loss-threshold attack
        (:mod:`pbmlib.privacy.lira`). The candidates are the training originals and as many
        held-out originals (a stratified sample); the target models are asked about them
        as the scheme shows test images to a model.
    shadow_models : int, default=16
        Shadow models of LiRA, trained on random halves of the candidates (originals, the
        target's recipe), once per split and shared by every condition (and, through a
        learner's baseline cache, by every run of a sweep). 0 runs the loss-threshold
        attack alone; otherwise an even number >= 2.
    n_splits : int, default=1
        Independent splits (and scheme seeds and training seeds); figures are means over
        them and intervals resample within each.
    test_fraction : float, default=0.3
        Share of every class held out: the clean test set, the audit's non-members and
        the attacker's public images.
    max_membership_auc, max_reid_top1, max_accuracy_drop : float
        The target (membership AUC < 0.6, re-identification < 0.2, cost <= 5 points):
        decided per setting only where the intervals decide it.

    References
    ----------
    .. [1] N. Carlini et al., "Membership inference attacks from first principles", IEEE S&P 2022.
    """

    train: bool = True
    audit: bool = False
    model_membership: bool = False
    shadow_models: int = 16
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
        shadows = check_int_range(self.shadow_models, name="shadow_models", low=0, high=10_000)
        if shadows % 2:
            raise ValueError(f"shadow_models must be 0 or an even number (every candidate in half of them), "
                             f"got {shadows}")
        set_field(self, "shadow_models", shadows)
        set_field(self, "test_fraction", check_real(self.test_fraction, name="test_fraction", low=0.0, high=1.0,
                                                    low_open=True, high_open=True))
        set_field(self, "max_membership_auc", check_real(self.max_membership_auc, name="max_membership_auc",
                                                         low=0.0, high=1.0))
        set_field(self, "max_reid_top1", check_real(self.max_reid_top1, name="max_reid_top1", low=0.0, high=1.0))
        set_field(self, "max_accuracy_drop", check_real(self.max_accuracy_drop, name="max_accuracy_drop",
                                                        low=0.0, high=100.0))
