"""Study conditions, and the one function that turns a notebook's parameters into a study.

A condition is a protection scheme, optionally followed by the paper's augmentation.
:func:`study_from_parameters` reads the parameter vocabulary the study notebooks share
(``schemes``; or ``pbm_blocks`` with ``baselines``; or ``block_height``/``block_width``,
with ``augment_mode`` for the augmentation study; the training, study and attack
settings by their field names) and returns the data, conditions and settings to run.
The notebooks call it, and so does the sweep planner (:mod:`pbmlib.workbench.plan`):
what a sweep will train is computed by the code that trains it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .._validation import check_bool, check_positive_int
from ..data.augmentation import Augmentation
from ..privacy.audit import AttackSettings
from ..schemes import get_scheme
from ..schemes.base import Scheme
from .settings import StudySettings, TrainingSettings

__all__ = ["Condition", "as_condition", "schemes_from_specs", "StudyPlan", "study_from_parameters"]


@dataclasses.dataclass(frozen=True)
class Condition:
    """One training condition: a protection scheme, optionally followed by augmentation.

    Attributes
    ----------
    scheme : Scheme
        Unfitted; the study fits it on the training part of every split.
    augment : Augmentation, optional
        The paper's flip / rotation / brightness on the protected training images.
    """

    scheme: Scheme
    augment: Augmentation | None = None

    @property
    def label(self) -> str:
        return self.scheme.label + (" +augment" if self.augment is not None else "")

    @property
    def reference(self) -> bool:
        """The unprotected, unaugmented condition: the one accuracy costs are measured from."""
        return bool(self.scheme.is_reference and self.augment is None)

    @property
    def images_per_training_image(self) -> int:
        """How many images a training sees per protected image (offline augmentation adds copies)."""
        if self.augment is not None and self.augment.mode == "offline":
            return 1 + self.augment.copies
        return 1


def as_condition(item) -> Condition:
    """A :class:`Condition` from a Scheme, a (Scheme, Augmentation) pair or a Condition."""
    if isinstance(item, Condition):
        return item
    if isinstance(item, Scheme):
        return Condition(item)
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], Scheme):
        return Condition(*item)
    raise ValueError(f"a study condition is a Scheme, a (Scheme, Augmentation) pair or a Condition, got {item!r}")


def schemes_from_specs(specs) -> list[Scheme]:
    """Schemes from config entries such as ``{"scheme": "pbm", "block": [5, 5]}`` (notebook and
    sweep parameters); every entry's parameters are validated by its scheme."""
    schemes = []
    for spec in specs:
        if not isinstance(spec, dict) or "scheme" not in spec:
            raise ValueError(f"a scheme entry is a mapping with a 'scheme' key, got {spec!r}")
        schemes.append(get_scheme(spec["scheme"], **{k: v for k, v in spec.items() if k != "scheme"}))
    return schemes


@dataclasses.dataclass
class StudyPlan:
    """What a study notebook runs: the data, the conditions, and :func:`run_study`'s options.

    Attributes
    ----------
    dataset : str
        A name of :func:`pbmlib.load_dataset` or a folder.
    test_dataset : str or None
        A test set of its own (e.g. ``"fashion_mnist_test"``); None splits ``dataset``.
    image_size : int or None
    n_images : int or None
        Use a stratified sample of this many images of ``dataset`` (None: all).
    rgb : bool
        Give grey images three channels.
    conditions : list of Condition
    options : dict
        ``study``, ``training``, ``attacks`` settings for :func:`run_study`.
    seed : int or None
    """

    dataset: str
    test_dataset: str | None
    image_size: int | None
    n_images: int | None
    rgb: bool
    conditions: list
    options: dict
    seed: object

    def load(self):
        """``(data, test)``: the data set and the test set of its own (None without one)."""
        from ..data.datasets import ImageSet, load_dataset

        def load(name):
            data = load_dataset(name, size=self.image_size)
            if self.rgb and data.images.ndim == 3:
                data = ImageSet(np.repeat(data.images[..., None], 3, axis=3), data.labels, data.files,
                                data.description)
            return data

        data = load(self.dataset)
        if self.n_images is not None and self.n_images < len(data):
            from ..data.split import stratified_subsample

            data = data.subset(stratified_subsample(data.labels, self.n_images, seed=self.seed))
        return data, (load(self.test_dataset) if self.test_dataset else None)

    def trainings(self) -> list[Condition]:
        """The conditions trained on every split (all of them, or none when ``train`` is off)."""
        return list(self.conditions) if self.options["study"].train else []


def _pick(parameters: dict, cls) -> dict:
    return {k: parameters[k] for k in cls.field_names() if k in parameters}


def study_from_parameters(parameters: dict) -> StudyPlan:
    """The study a notebook's (or a sweep run's) parameters describe.

    Conditions, from the first vocabulary present:

    - ``schemes``: a list of scheme entries (``{"scheme": "pbm", "block": [5, 5]}``);
    - ``pbm_blocks``: the unprotected reference, PBM at each block (with ``n_donors``,
      ``rounds``, ``p``), then the entries of ``baselines``;
    - ``block_height`` and ``block_width``: PBM at that block (with ``n_donors``,
      ``rounds``, ``p``) after the reference; with ``augment_mode``, PBM without and with
      the paper's augmentation (``flip``, ``rotation``, ``brightness``,
      ``augment_copies``) instead.

    The other parameters are read by name: :class:`~pbmlib.study.settings.TrainingSettings`
    (``model_name``, ``epochs``, ...), :class:`~pbmlib.study.settings.StudySettings`
    (``train``, ``audit``, ``n_splits``, ``test_fraction``, the targets),
    :class:`~pbmlib.privacy.audit.AttackSettings` (``matchers``, ``copies``,
    ``attack_block``, ``inversion``, ...), and ``dataset``, ``n_images`` (a stratified
    sample; 0 uses all), ``test_dataset``, ``image_size`` (0 keeps the size), ``rgb``, ``seed``. Anything else is ignored (output
    folders, figure options).

    Raises
    ------
    ValueError
        No training or study setting (then it is no study, e.g. the mixing notebook's), no
        condition vocabulary, or a bad value (naming it).
    """
    p = dict(parameters)
    if not set(p) & (set(TrainingSettings.field_names()) | set(StudySettings.field_names())):
        raise ValueError("the parameters describe no study: a study declares its training or study settings "
                         "(epochs, train, n_splits, ...)")
    mixing = {k: p[k] for k in ("n_donors", "rounds", "p") if k in p}
    if "schemes" in p:
        conditions = [as_condition(s) for s in schemes_from_specs(p["schemes"])]
    elif "pbm_blocks" in p:
        conditions = [Condition(get_scheme("none"))]
        conditions += [Condition(get_scheme("pbm", block=block, **mixing)) for block in p["pbm_blocks"]]
        conditions += [Condition(s) for s in schemes_from_specs(p.get("baselines", []))]
    elif "block_height" in p and "block_width" in p:
        pbm = get_scheme("pbm", block=(p["block_height"], p["block_width"]), **mixing)
        if "augment_mode" in p:
            augmentation = Augmentation(flip=p.get("flip", True), rotation=p.get("rotation", 15.0),
                                        brightness=p.get("brightness", 0.2), mode=p["augment_mode"],
                                        copies=p.get("augment_copies", 1))
            conditions = [Condition(pbm), Condition(pbm, augmentation)]
        else:
            conditions = [Condition(get_scheme("none")), Condition(pbm)]
    else:
        raise ValueError("the parameters describe no study: give schemes, pbm_blocks, or block_height and "
                         "block_width")
    attacks = _pick(p, AttackSettings)
    if attacks.get("matchers") is not None:
        attacks["matchers"] = tuple(attacks["matchers"])
    if attacks.get("copies") is not None:
        attacks["copies"] = tuple(attacks["copies"])
    if attacks.get("max_candidates") == 0:  # a notebook's 0: every candidate
        attacks["max_candidates"] = None
    options = {"study": StudySettings(**_pick(p, StudySettings)), "training": TrainingSettings(**_pick(p, TrainingSettings)),
               "attacks": AttackSettings(**attacks)}
    image_size = p.get("image_size") or None
    if image_size is not None:
        image_size = check_positive_int(image_size, name="image_size")
    n_images = p.get("n_images") or None
    if n_images is not None:
        n_images = check_positive_int(n_images, name="n_images")
    return StudyPlan(dataset=p.get("dataset", "faces"), test_dataset=p.get("test_dataset") or None,
                     image_size=image_size, n_images=n_images, rgb=check_bool(p.get("rgb", False), name="rgb"),
                     conditions=conditions, options=options, seed=p.get("seed"))
