# ---
# jupyter:
#   title: 06 PBM against the other schemes
# ---

# %% [markdown]
# # 06 · PBM against the other schemes
# The same model, data, split and seeds under every protection: PBM, VisualMixer pixel
# shuffling (Li et al., NDSS 2024), pixel-based encryption (Sirichotedumrong et al., ICIP
# 2019), block-wise learnable encryption (Tanaka, ICCE-TW 2018) and the simple baselines.
# Encryption schemes train through their adaptation network and their test images are
# encrypted with the same key; VisualMixer shuffles its test images too; PBM and the
# baselines are tested on clean images. Every scheme gets the full privacy scorecard.
# For reference: VisualMixer reports an average accuracy loss of 2.35 points; pixel-based
# encryption reports accuracy close to plain images with augmentation.

# %% tags=["parameters"]
dataset: str = "faces"  # "faces", "mnist", "fashion_mnist" or a folder of label/*.png
image_size: int = 24  # resize to image_size x image_size (block encryption needs a multiple of 4)
rgb: bool = True  # give grayscale sets 3 channels (the encryptions shuffle colour channels)
schemes: list = [{"scheme": "none"}, {"scheme": "pbm", "block": [6, 6]}, {"scheme": "pbm", "block": [3, 3]}, {"scheme": "visualmixer", "window": 8}, {"scheme": "pixel_encryption"}, {"scheme": "block_encryption"}, {"scheme": "blur", "sigma": 2.0}, {"scheme": "pixelate", "cell": 4}]  # protections and their parameters
attack_block: list = [4, 4]  # the attacker's block guess for schemes without block geometry of their own
matchers: list = ["pixel", "hog", "invariant", "mosaic", "blocks", "blocks_robust", "face"]  # re-identification matchers ("face" needs the extra)
copies: list = ["exact", "jpeg95", "jpeg75"]  # what the attacker holds of the released set: lossless, or re-encoded
inversion: bool = True  # also run the learned-inversion attack (chosen plaintext for keyed schemes)
epochs: int = 12  # training epochs
repeats: int = 2  # trainings per scheme and split
n_splits: int = 2  # independent splits, scheme seeds (keys) and training seeds: every figure has an interval
test_fraction: float = 0.3  # held-out share
seed: int = 0  # seed (and key) for the split, the protections and the training
backup_dir: str = ""  # folder that makes the trainings resumable (a sweep gives each run one); "" for none
baseline_cache: str = ""  # folder of trained baselines shared by a sweep's runs ("" trains the original here)
output_dir: str = "papermill_runs/manual/06_schemes"  # where results.json, CSV and PNG go

# %%
from pbmlib.learn.learner import KerasLearner
from pbmlib.study import run_study, study_from_parameters
from pbmlib.workbench.plotting import data_name, plot_privacy_utility, show_schemes
from pbmlib.workbench.results import project_path, write_study

parameters = dict(dataset=dataset, image_size=image_size, rgb=rgb, schemes=schemes, attack_block=attack_block,
                  matchers=matchers, copies=copies, inversion=inversion, audit=True, epochs=epochs, repeats=repeats,
                  n_splits=n_splits, test_fraction=test_fraction, seed=seed, output_dir=output_dir)
plan = study_from_parameters(parameters)
data, test = plan.load()
out = project_path(output_dir)
out.mkdir(parents=True, exist_ok=True)
print(data.images.shape, [c.label for c in plan.conditions])
show_schemes({c.label: c.scheme.fit_protect(data.images, data.labels, seed=seed)[:4] for c in plan.conditions},
             title=f"{data_name(dataset)}: the first images under each scheme").savefig(
    out / "schemes_examples.png", dpi=120)

# %%
learner = KerasLearner(baseline_cache=baseline_cache or None, backup_dir=backup_dir or None)
table, records = run_study(data, plan.conditions, test=test, seed=plan.seed,
                           learner=learner, progress=True, **plan.options)
columns = ["setting", "test_accuracy_mean", "test_accuracy_std", "accuracy_drop", "accuracy_drop_low",
           "accuracy_drop_high", "ssim_mean", "ssim_floor_mean", "worst_reid_top1", "worst_reid_attack",
           "worst_membership_auc", "worst_membership_attack", "blocks_verbatim_fraction"]
columns += [f"{m}_{c}" for c in copies if c != "exact" for m in ("worst_reid_top1", "worst_membership_auc")]
table[[c for c in columns if c in table]].round(3)

# %%
plot_privacy_utility(table, x="worst_reid_top1", title=f"Clean test accuracy against re-identification, small CNN "
                     f"on {data_name(dataset)}").savefig(out / "privacy_utility.png", dpi=120)
print("wrote", write_study(out, parameters, table, records))
