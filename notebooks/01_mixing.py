# ---
# jupyter:
#   title: 01 Pixel Block Mixing of a dataset
# ---

# %% [markdown]
# # 01 · Pixel Block Mixing of a dataset
# Mix a dataset with label-based Pixel Block Mixing, look at originals beside mixed images
# (block grid in red), and read the two numbers the paper gives for privacy: SSIM per class
# (here beside its chance floor) and the brute-force restoration probability (Eq. 9, log10).

# %% tags=["parameters"]
dataset: str = "faces"  # "faces", "mnist", "fashion_mnist" or a folder of label/*.png
image_size: int = 0  # resize to image_size x image_size first; 0 keeps the size
block_height: int = 5  # L_b, block height in pixels (must divide the image height)
block_width: int = 5  # W_b, block width in pixels (must divide the image width)
n_donors: int = 10  # N_s, same-label donors per image and round
rounds: int = 1  # N_t, mixing rounds
p: float = 0.5  # probability that a block is replaced in one round
seed: int = 0  # random seed: same seed, same bytes
n_images: int = 0  # mix only the first n_images (stratified); 0 mixes all
n_show: int = 8  # images shown in the figure
n_timings: int = 3  # mixings timed; mix_seconds is their median
output_dir: str = "papermill_runs/manual/01_mixing"  # where results.json, CSV and PNG go

# %%
import time
import numpy as np

import pbmlib
from pbmlib.data.split import stratified_subsample
from pbmlib.workbench.plotting import show_pairs
from pbmlib.privacy.similarity import ssim_floor_scores, ssim_floor_table, ssim_scores
from pbmlib.workbench.results import project_path, write_results

parameters = dict(dataset=dataset, image_size=image_size, block_height=block_height, block_width=block_width,
                  n_donors=n_donors, rounds=rounds, p=p, seed=seed, n_images=n_images, n_show=n_show,
                  n_timings=n_timings, output_dir=output_dir)
out = project_path(output_dir)
out.mkdir(parents=True, exist_ok=True)
data = pbmlib.load_dataset(dataset, size=image_size or None)
if n_images:
    data = data.subset(stratified_subsample(data.labels, n_images, seed=seed))
block = (block_height, block_width)
print(data.description, data.images.shape, "classes:", data.classes)

# %%
timings = []
for _ in range(n_timings):  # the same mixing each time (same seed): the median is the figure
    t0 = time.perf_counter()
    mixed, sources = pbmlib.mix_blocks(data.images, data.labels, block=block, n_donors=n_donors, rounds=rounds,
                                       p=p, seed=seed, return_sources=True)
    timings.append(time.perf_counter() - t0)
mix_seconds = float(np.median(timings))
kept = float((sources == np.arange(len(data))[:, None, None]).mean())
print(f"mixed {len(data)} images in {mix_seconds:.3f} s; {kept:.1%} of blocks kept their own pixels")

# %%
order = np.argsort(data.labels, kind="stable")
shown = np.linspace(0, len(data) - 1, n_show).astype(int)
fig = show_pairs(data.images[order][shown], mixed[order][shown], block=block, labels=data.labels[order][shown],
                 n=n_show, title=f"blocks {block_height}x{block_width}, N_s={n_donors}, N_t={rounds}, p={p}")
fig.savefig(out / "mixing_examples.png", dpi=120)

# %% [markdown]
# SSIM of every mixed image to its original, beside the **floor**: SSIM of the original to
# a random other image of the same class. Only the excess over the floor is information the
# mixing kept.

# %%
ssim = ssim_scores(data.images, mixed)
floor = ssim_floor_scores(data.images, data.labels, seed=seed)
table = ssim_floor_table(ssim, floor, data.labels)
table.to_csv(out / "ssim_per_class.csv")
table.round(3)

# %%
nb = pbmlib.n_blocks(data.images.shape[1:], block)
class_sizes = {str(c): int((data.labels == c).sum()) for c in data.classes}
log10_total, log10_per_class = pbmlib.restoration_log10_probability(class_sizes, nb, per_class=True)
print(f"N_b = {nb}; log10 P(restore every class) = {log10_total:.1f}  (Eq. 9: a brute-force count, "
      "not what a matching attacker needs)")

# %%
results = write_results(
    out, "mixing", parameters, n_blocks=nb, n_images=len(data), image_shape=list(data.images.shape[1:]),
    ssim_mean=float(ssim.mean()), ssim_std=float(ssim.std(ddof=1)), ssim_floor_mean=float(floor.mean()),
    ssim_excess=float(ssim.mean() - floor.mean()), blocks_kept_fraction=kept, mix_seconds=mix_seconds,
    log10_restoration_probability=log10_total, log10_restoration_probability_per_class=log10_per_class,
    class_sizes=class_sizes)
print("wrote", results)
