# ---
# jupyter:
#   title: 05 A privacy scorecard
# ---

# %% [markdown]
# # 05 · An honest privacy scorecard
# The paper argues privacy with SSIM and a brute-force count. This notebook measures what an
# attacker can actually do with a protected training set, for several PBM block sizes and the
# simple protections users would otherwise pick (blur, pixelation, a black box):
#
# - **similarity with its floor**: SSIM and PSNR to the own original, beside the same measure
#   to a random same-label image;
# - **re-identification**: rank a gallery of the originals for every protected image (pixel,
#   HOG, identical-block and, when installed, dlib face-embedding matchers); chance is 1/N;
# - **membership**: was a candidate image in the set? Count its blocks found unchanged at
#   their position (AUC and true-positive rate at 1 % false positives, against the test images);
# - **reassembly**: rebuild originals from the protected set alone with a seam-matching solver;
# - **learned inversion**: a network trained on public images protected the same way maps
#   protected images back (the held-out images play the public data);
# - the **worst case** over attacks, beside the paper's restoration probability;
# - the privacy/utility frontier: clean-test accuracy of the small CNN against the worst attack.

# %% tags=["parameters"]
dataset: str = "faces"  # "faces", "mnist", "fashion_mnist" or a folder of label/*.png
pbm_blocks: list = [[25, 5], [5, 5], [5, 1], [1, 1]]  # PBM block sizes [height, width] to score
n_donors: int = 10  # N_s for PBM
rounds: int = 1  # N_t for PBM
baselines: list = [{"scheme": "blur", "sigma": 2.0}, {"scheme": "pixelate", "cell": 5}, {"scheme": "mask", "fraction": 0.6}]  # other protections
attack_block: list = [5, 5]  # the attacker's block guess for schemes without block geometry of their own
matchers: list = ["pixel", "hog", "invariant", "mosaic", "blocks", "blocks_robust", "face"]  # re-identification matchers ("face" needs the extra)
copies: list = ["exact", "jpeg95", "jpeg75"]  # what the attacker holds of the released set: lossless, or re-encoded
inversion: bool = True  # also run the learned-inversion attack (held-out images as public data)
train: bool = True  # also train the small CNN on every protected set (the utility axis)
epochs: int = 12  # training epochs
repeats: int = 2  # trainings per setting and split
n_splits: int = 3  # independent splits, scheme seeds and training seeds: every figure has an interval
shadow_releases: int = 16  # shadow releases of the shadow-calibrated likelihood attack (0 leaves it out)
test_fraction: float = 0.3  # held-out share: the clean test set and the membership non-members
seed: int = 0  # seed for the split, the protections and the training
backup_dir: str = ""  # folder that makes the trainings resumable (a sweep gives each run one); "" for none
baseline_cache: str = ""  # folder of trained baselines shared by a sweep's runs ("" trains the original here)
output_dir: str = "papermill_runs/manual/05_privacy"  # where results.json, CSV and PNG go

# %%
from pbmlib.learn.learner import KerasLearner
from pbmlib.privacy.matchers import available_matchers
from pbmlib.study import run_study, study_from_parameters
from pbmlib.workbench.plotting import data_name, plot_privacy_utility, show_schemes
from pbmlib.workbench.results import project_path, write_study

parameters = dict(dataset=dataset, pbm_blocks=pbm_blocks, n_donors=n_donors, rounds=rounds, baselines=baselines,
                  attack_block=attack_block, matchers=matchers, copies=copies, inversion=inversion, train=train,
                  audit=True, epochs=epochs, repeats=repeats, n_splits=n_splits, shadow_releases=shadow_releases,
                  test_fraction=test_fraction, seed=seed, output_dir=output_dir)
plan = study_from_parameters(parameters)  # the reference, PBM at every block, the baselines
data, test = plan.load()
out = project_path(output_dir)
out.mkdir(parents=True, exist_ok=True)
print(len(data), "images; matchers that run here:", available_matchers(matchers, block=attack_block))
show_schemes({c.label: c.scheme.fit_protect(data.images, data.labels, seed=seed)[:4] for c in plan.conditions},
             title=f"{data_name(dataset)}: the first images under each protection").savefig(
    out / "schemes_examples.png", dpi=120)

# %%
learner = KerasLearner(baseline_cache=baseline_cache or None, backup_dir=backup_dir or None)
table, records = run_study(data, plan.conditions, test=test, seed=plan.seed,
                           learner=learner, progress=True, **plan.options)
columns = ["setting", "ssim_mean", "ssim_floor_mean", "worst_reid_top1", "worst_reid_top1_low", "worst_reid_top1_high",
           "worst_reid_attack", "released_reid_top1", "reid_chance_top1", "worst_membership_auc",
           "worst_membership_auc_low", "worst_membership_auc_high", "worst_membership_attack",
           "worst_membership_tpr_at_low_fpr", "worst_membership_low_fpr", "blocks_verbatim_fraction",
           "blocks_verbatim_floor", "log10_restoration_probability", "test_accuracy_mean", "accuracy_drop"]
table[[c for c in columns if c in table]].round(3)

# %% [markdown]
# Every `worst_*` figure is a lower bound on what an attacker achieves: the attack that was strongest
# on a calibration half of the candidates, measured on the other half, averaged over the splits, with a
# 95 % interval. The same attacks when the attacker holds a re-encoded copy of the released set (JPEG at
# quality 95 or 75): exact block matching fails on lossy copies, the robust and likelihood attacks need not.

# %%
lossy = ["setting"] + [f"{m}_{c}" for c in copies if c != "exact"
                       for m in ("worst_reid_top1", "worst_reid_attack", "worst_membership_auc",
                                 "worst_membership_attack")]
table[[c for c in lossy if c in table]].round(3)

# %% [markdown]
# Every attack's figure on the evaluation half (exact copy), per setting: which attacks find what.

# %%
import pandas as pd

attacks = pd.DataFrame([{"setting": label, **row} for label, record in records.items()
                        for audit in record["audits"] for row in audit["attacks"] if row["copy"] == "exact"])
attacks.pivot_table(index=["task", "attack"], columns="setting", values="evaluation", aggfunc="mean").round(2)

# %% [markdown]
# Compare `worst_reid_top1` (chance: `reid_chance_top1`) with `log10_restoration_probability`, the
# paper's brute-force count, which is astronomically small for every PBM setting.

# %%
if train:
    plot_privacy_utility(table, x="worst_reid_top1", title=f"Clean test accuracy against re-identification, small "
                         f"CNN on {data_name(dataset)}").savefig(out / "privacy_utility.png", dpi=120)
print("wrote", write_study(out, parameters, table, records))
