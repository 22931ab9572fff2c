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
schemes: list = [{"scheme": "none"}, {"scheme": "pbm", "block": [5, 5]}, {"scheme": "dppix", "epsilon": 0.1, "cell": 5}, {"scheme": "dppix", "epsilon": 0.5, "cell": 5}, {"scheme": "dppix", "epsilon": 1.0, "cell": 5}, {"scheme": "dppix", "epsilon": 4.0, "cell": 5}, {"scheme": "dppix", "epsilon": 16.0, "cell": 5}, {"scheme": "dppix", "epsilon": float("inf"), "cell": 5}, {"scheme": "pbm_noise", "block": [5, 5], "sigma": 32.0}, {"scheme": "pbm_noise", "block": [5, 5], "sigma": 128.0}, {"scheme": "pbm_shuffle", "block": [5, 5]}, {"scheme": "pbm_average", "block": [5, 5], "k": 16, "p": 1.0}, {"scheme": "pbm_augment", "block": [5, 5]}]  # protections and their parameters
attack_block: list = [5, 5]  # the attacker's block guess for schemes without block geometry of their own
matchers: list = ["pixel", "hog", "invariant", "mosaic", "blocks", "blocks_robust"]  # fixed re-identification matchers
inversion: bool = False  # also run the learned inversion (a minute per scheme on 2 cores)
epochs: int = 12  # training epochs
repeats: int = 3  # trainings per scheme (error bars are their standard deviation)
test_fraction: float = 0.3  # held-out share: the clean test set, the non-members, the public images
max_accuracy_drop: float = 5.0  # the target's utility cost, in points
max_membership_auc: float = 0.6  # the target's membership AUC
max_reid_top1: float = 0.2  # the target's re-identification rate
seed: int = 0  # seed of the split, the schemes' keys and noise, and the trainings
backup_dir: str = ""  # folder that makes the trainings resumable (a sweep gives each run one); "" for none
output_dir: str = "papermill_runs/manual/07_frontier"  # where results.json, CSV and PNG go

# %%
import pbmlib
from pbmlib.learn.studies import run_study, schemes_from_specs
from pbmlib.workbench.plotting import data_name, plot_privacy_utility
from pbmlib.workbench.results import project_path, write_study

parameters = dict(dataset=dataset, schemes=schemes, attack_block=attack_block, matchers=matchers, inversion=inversion,
                  epochs=epochs, repeats=repeats, test_fraction=test_fraction, max_accuracy_drop=max_accuracy_drop,
                  max_membership_auc=max_membership_auc, max_reid_top1=max_reid_top1, seed=seed,
                  output_dir=output_dir)
out = project_path(output_dir)
out.mkdir(parents=True, exist_ok=True)
data = pbmlib.load_dataset(dataset)
built = schemes_from_specs(schemes)
print(len(data), "images;", [s.label for s in built])

# %%
table, records = run_study(data, built, scorecard=True, adaptive=True, model_membership=True,
                           attack_block=attack_block, matchers=matchers, inversion=inversion, epochs=epochs,
                           repeats=repeats, test_fraction=test_fraction, seed=seed,
                           backup_dir=backup_dir or None, progress=True)
table["meets_target"] = ((table["accuracy_drop"] <= max_accuracy_drop)
                         & (table["worst_membership_auc"] < max_membership_auc)
                         & (table["worst_reid_top1"] < max_reid_top1))
shown = table[["setting", "test_accuracy_mean", "test_accuracy_std", "accuracy_drop", "worst_reid_top1",
               "worst_reid_attack", "worst_membership_auc", "worst_membership_attack", "model_membership_auc",
               "meets_target"]]
shown.round(3)

# %% [markdown]
# Accuracy differences of a few points are within the noise here: one of the held-out faces is
# 1.7 points, and the error bars are the standard deviation over repeats. The privacy columns are
# the solid part.

# %%
for x, name, what in (("worst_reid_top1", "frontier_reid.png", "re-identification"),
                      ("worst_membership_auc", "frontier_membership.png", "membership inference"),
                      ("model_membership_auc", "frontier_model_membership.png", "membership inference on the model")):
    fig = plot_privacy_utility(table, x=x, verdict="meets_target",
                               title=f"Clean test accuracy against {what}, small CNN on {data_name(dataset)}")
    fig.savefig(out / name, dpi=120)

# %%
met = table.loc[table["meets_target"], "setting"].tolist()
print("settings that meet the target:", met or "none")
print("wrote", write_study(out, parameters, table.drop(columns="meets_target"), records))
