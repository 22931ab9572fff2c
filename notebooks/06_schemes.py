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
repeats: int = 2  # trainings per scheme
test_fraction: float = 0.3  # held-out share
seed: int = 0  # seed (and key) for the split, the protections and the training
backup_dir: str = ""  # folder that makes the trainings resumable (a sweep gives each run one); "" for none
output_dir: str = "papermill_runs/manual/06_schemes"  # where results.json, CSV and PNG go

# %%
import numpy as np

import pbmlib
from pbmlib.learn.studies import run_study, schemes_from_specs
from pbmlib.workbench.plotting import data_name, plot_privacy_utility, show_schemes
from pbmlib.workbench.results import project_path, write_study

parameters = dict(dataset=dataset, image_size=image_size, rgb=rgb, schemes=schemes, attack_block=attack_block,
                  matchers=matchers, copies=copies, inversion=inversion, epochs=epochs, repeats=repeats,
                  test_fraction=test_fraction, seed=seed, output_dir=output_dir)
out = project_path(output_dir)
out.mkdir(parents=True, exist_ok=True)
data = pbmlib.load_dataset(dataset, size=image_size or None)
if rgb and data.images.ndim == 3:
    data = pbmlib.ImageSet(np.repeat(data.images[..., None], 3, axis=3), data.labels, data.files, data.description)
built = schemes_from_specs(schemes)
print(data.images.shape, [s.label for s in built])
show_schemes({s.label: s.fit_protect(data.images, data.labels, seed=seed)[:4] for s in built},
             title=f"{data_name(dataset)}: the first images under each scheme").savefig(
    out / "schemes_examples.png", dpi=120)

# %%
table, records = run_study(data, built, scorecard=True, attack_block=attack_block, matchers=matchers, copies=copies,
                           inversion=inversion, epochs=epochs, repeats=repeats, test_fraction=test_fraction, seed=seed,
                           backup_dir=backup_dir or None, progress=True)
columns = ["setting", "test_accuracy_mean", "test_accuracy_std", "accuracy_drop", "ssim_mean", "ssim_floor_mean",
           "reid_top1", "reid_top1_attack", "membership_auc", "membership_auc_robust", "blocks_verbatim_fraction"]
columns += [f"{m}_{c}" for c in copies if c != "exact" for m in ("reid_top1", "membership_auc_robust")]
table[[c for c in columns if c in table]].round(3)

# %%
plot_privacy_utility(table, title=f"Clean test accuracy against re-identification, small CNN on "
                                  f"{data_name(dataset)}").savefig(out / "privacy_utility.png", dpi=120)
print("wrote", write_study(out, parameters, table, records))
