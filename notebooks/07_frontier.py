# ---
# jupyter:
#   title: 07 The privacy-utility frontier
# ---

# %% [markdown]
# # 07 · The privacy/utility frontier, beyond the papers
# Is there a setting that protects and still trains? Every scheme on one split of the faces,
# with repeats: PBM, a formal-privacy baseline (DP-Pix: pixelation plus Laplace noise,
# epsilon-differentially private for any `m` changed pixels), and PBM variants defended against
# its weakness (verbatim blocks at their position): noise, shuffled positions, averaged donors,
# augmentation before release. Each is attacked by the fixed suite **and by attacks designed
# against that defence** (denoising, position-free block search, mixtures, augmentation search).
# Two privacy axes against clean-test accuracy:
#
# - **data level**: the worst re-identification and membership attack on the released images;
# - **model level**: a loss-threshold membership attack on the model trained on them (the standard
#   audit of a training pipeline). DP-SGD would protect this axis only: it protects the released
#   model, not the images the trainer sees, which is PBM's threat model.
#
# The target no published scheme here meets: membership AUC below 0.6 and re-identification
# below 0.2 at a cost of at most 5 accuracy points.

# %% tags=["parameters"]
dataset: str = "faces"  # "faces", "mnist", "fashion_mnist" or a folder of label/*.png
n_images: int = 0  # a stratified sample of the data set (the training set when test_dataset is given); 0: all
schemes: list = [{"scheme": "none"}, {"scheme": "pbm", "block": [5, 5]}, {"scheme": "dppix", "epsilon": 0.1, "cell": 5}, {"scheme": "dppix", "epsilon": 0.5, "cell": 5}, {"scheme": "dppix", "epsilon": 1.0, "cell": 5}, {"scheme": "dppix", "epsilon": 4.0, "cell": 5}, {"scheme": "dppix", "epsilon": 16.0, "cell": 5}, {"scheme": "dppix", "epsilon": float("inf"), "cell": 5}, {"scheme": "pbm_noise", "block": [5, 5], "sigma": 32.0}, {"scheme": "pbm_noise", "block": [5, 5], "sigma": 128.0}, {"scheme": "pbm_shuffle", "block": [5, 5]}, {"scheme": "pbm_average", "block": [5, 5], "k": 16, "p": 1.0}, {"scheme": "pbm_augment", "block": [5, 5]}]  # protections and their parameters
attack_block: list = [5, 5]  # the attacker's block guess for schemes without block geometry of their own
matchers: list = ["pixel", "hog", "invariant", "mosaic", "blocks", "blocks_robust"]  # fixed re-identification matchers
inversion: bool = True  # also run the learned inversion (the natural attack on noise and averages)
inversion_epochs: int = 30  # its training epochs
shadow_releases: int = 16  # shadow releases of the shadow-calibrated likelihood attack (0 leaves it out)
adaptive: bool = True  # also the attacks designed against each defence (pbmlib.privacy.adaptive)
max_candidates: int = 0  # ask about at most this many members and non-members (large sets); 0: all
epochs: int = 12  # training epochs
repeats: int = 2  # trainings per scheme and split
n_splits: int = 5  # independent splits, scheme seeds and training seeds: every figure has an interval
model_membership: bool = True  # also attack the trained models (LiRA with shadow models, and the loss threshold)
shadow_models: int = 16  # LiRA's shadow models per split (an even number; 0: the loss-threshold attack alone)
copies: list = ["exact"]  # what the attacker holds of the release: "exact", or re-encoded "jpeg95", "jpeg75"
test_fraction: float = 0.3  # held-out share: the clean test set, the non-members, the public images
max_accuracy_drop: float = 5.0  # the target's utility cost, in points
max_membership_auc: float = 0.6  # the target's membership AUC
max_reid_top1: float = 0.2  # the target's re-identification rate
test_dataset: str = ""  # a test set of its own (e.g. "fashion_mnist_test"); "" holds out test_fraction
seed: int = 0  # seed of the split, the schemes' keys and noise, and the trainings
backup_dir: str = ""  # folder that makes the trainings resumable (a sweep gives each run one); "" for none
baseline_cache: str = ""  # folder of trained baselines shared by a sweep's runs ("" trains the original here)
output_dir: str = "papermill_runs/manual/07_frontier"  # where results.json, CSV and PNG go

# %%
from pbmlib.learn.learner import KerasLearner
from pbmlib.study import run_study, study_from_parameters
from pbmlib.workbench.plotting import data_name, plot_membership_roc, plot_privacy_utility
from pbmlib.workbench.results import project_path, write_study

parameters = dict(dataset=dataset, n_images=n_images, test_dataset=test_dataset, schemes=schemes,
                  attack_block=attack_block, matchers=matchers, inversion=inversion, inversion_epochs=inversion_epochs,
                  shadow_releases=shadow_releases, adaptive=adaptive, max_candidates=max_candidates, audit=True,
                  model_membership=model_membership, shadow_models=shadow_models, copies=copies, epochs=epochs,
                  repeats=repeats, n_splits=n_splits,
                  test_fraction=test_fraction, max_accuracy_drop=max_accuracy_drop,
                  max_membership_auc=max_membership_auc, max_reid_top1=max_reid_top1, seed=seed,
                  output_dir=output_dir)
plan = study_from_parameters(parameters)
data, test = plan.load()
out = project_path(output_dir)
out.mkdir(parents=True, exist_ok=True)
print(len(data), "images;", [c.label for c in plan.conditions])

# %%
learner = KerasLearner(baseline_cache=baseline_cache or None, backup_dir=backup_dir or None)
table, records = run_study(data, plan.conditions, test=test, seed=plan.seed, learner=learner, progress=True,
                           **plan.options)
shown = table[[c for c in ["setting", "test_accuracy_mean", "accuracy_drop", "accuracy_drop_low", "accuracy_drop_high",
               "worst_reid_top1", "worst_reid_top1_low", "worst_reid_top1_high", "worst_reid_attack",
               "worst_membership_auc", "worst_membership_auc_low", "worst_membership_auc_high",
               "worst_membership_attack", "model_membership_auc", "model_membership_auc_low",
               "model_membership_auc_high", "model_membership_tpr_at_low_fpr", "model_membership_low_fpr",
               "model_membership_loss_auc", "membership_target", "reid_target", "cost_target", "meets_target"]
               if c in table]]
shown.round(3)

# %% [markdown]
# Each target is decided only where its interval decides it: "met" when the interval's far end meets
# it, "not met" when its near end fails it, "undecided" otherwise. The privacy figures are lower
# bounds: the strongest of every attack that knows the scheme's published mechanism, chosen on a
# calibration half and measured on the other half.

# %%
for x, name, what in (("worst_reid_top1", "frontier_reid.png", "re-identification"),
                      ("worst_membership_auc", "frontier_membership.png", "membership inference"),
                      ("model_membership_auc", "frontier_model_membership.png", "membership inference on the model")):
    if x in table:
        fig = plot_privacy_utility(table, x=x, verdict="meets_target",
                                   title=f"Clean test accuracy against {what}, small CNN on {data_name(dataset)}")
        fig.savefig(out / name, dpi=120)

# %% [markdown]
# Membership on the trained models at low false-positive rates, where it matters: an attack with an AUC
# near 0.5 can still name a few members with near certainty. LiRA's shadow models are trained on
# random halves of the candidates (the originals), once per split; the loss-threshold attack is the
# weak baseline beside it (`model_membership_loss_auc`).

# %%
rocs = {label: record["model_membership_roc"] for label, record in records.items()}
if any(rocs.values()):
    attack = table["model_membership_attack"].iloc[0]
    plot_membership_roc(rocs, attack=attack, title=f"{attack} on the small CNN trained on each protected "
                        f"{data_name(dataset)} set: ROC, log-log").savefig(out / "model_membership_roc.png", dpi=120)

# %%
print("settings that meet the target:", table.loc[table["meets_target"] == "met", "setting"].tolist() or "none")
print("undecided:", table.loc[table["meets_target"] == "undecided", "setting"].tolist() or "none")
print("wrote", write_study(out, parameters, table, records))
