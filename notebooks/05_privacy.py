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
repeats: int = 2  # trainings per setting
test_fraction: float = 0.3  # held-out share: the clean test set and the membership non-members
seed: int = 0  # seed for the split, the protections and the training
backup_dir: str = ""  # folder that makes the trainings resumable (a sweep gives each run one); "" for none
output_dir: str = "papermill_runs/manual/05_privacy"  # where results.json, CSV and PNG go

# %%
import pbmlib
from pbmlib.learn.studies import run_study, schemes_from_specs
from pbmlib.privacy.matchers import available_matchers
from pbmlib.schemes import get_scheme
from pbmlib.workbench.plotting import data_name, plot_privacy_utility, show_schemes
from pbmlib.workbench.results import project_path, write_study

parameters = dict(dataset=dataset, pbm_blocks=pbm_blocks, n_donors=n_donors, rounds=rounds, baselines=baselines,
                  attack_block=attack_block, matchers=matchers, copies=copies, inversion=inversion, train=train,
                  epochs=epochs, repeats=repeats, test_fraction=test_fraction, seed=seed, output_dir=output_dir)
out = project_path(output_dir)
out.mkdir(parents=True, exist_ok=True)
data = pbmlib.load_dataset(dataset)
schemes = [get_scheme("none")]
schemes += [get_scheme("pbm", block=block, n_donors=n_donors, rounds=rounds) for block in pbm_blocks]
schemes += schemes_from_specs(baselines)
print(len(data), "images; matchers that run here:", available_matchers(matchers, block=attack_block))
show_schemes({s.label: s.fit_protect(data.images, data.labels, seed=seed)[:4] for s in schemes},
             title=f"{data_name(dataset)}: the first images under each protection").savefig(
    out / "schemes_examples.png", dpi=120)

# %%
table, records = run_study(data, schemes, train=train, scorecard=True, attack_block=attack_block, matchers=matchers,
                           copies=copies, inversion=inversion, epochs=epochs, repeats=repeats,
                           test_fraction=test_fraction, seed=seed,
                           backup_dir=backup_dir or None, progress=True)
columns = ["setting", "ssim_mean", "ssim_floor_mean"] + [f"reid_top1_{m}" for m in matchers] + [
    "reid_top1_reassembled", "reid_top1_inverted", "membership_auc", "membership_auc_robust",
    "membership_tpr_at_1pct_fpr", "blocks_verbatim_fraction", "blocks_verbatim_floor", "reid_top1",
    "reid_top1_attack", "log10_restoration_probability", "test_accuracy_mean"]
table[[c for c in columns if c in table]].round(3)

# %% [markdown]
# The same attacks when the attacker holds a re-encoded copy of the released set (JPEG at
# quality 95 or 75): exact block matching fails on lossy copies, the robust matcher does not.

# %%
lossy = ["setting"] + [f"{m}_{c}" for c in copies if c != "exact"
                       for m in ("reid_top1", "reid_top1_attack", "membership_auc", "membership_auc_robust")]
table[[c for c in lossy if c in table]].round(3)

# %% [markdown]
# `reid_top1` is the worst case: the best attack's rate of naming the right person first, against
# a chance of `reid_chance_top1`. Compare it with `log10_restoration_probability`, the paper's
# brute-force count, which is astronomically small for every PBM setting.

# %%
if train:
    plot_privacy_utility(table, title=f"Clean test accuracy against re-identification, small CNN on "
                                      f"{data_name(dataset)}").savefig(out / "privacy_utility.png", dpi=120)
print("wrote", write_study(out, parameters, table, records))
