# ---
# jupyter:
#   title: Pixel Block Mixing explorer
# ---

# %% [markdown]
# # Pixel Block Mixing explorer
# **Pixel Block Mixing (PBM)** protects a set of training images by cutting every image into
# blocks and replacing some of its blocks with the blocks at the same place in other images of
# the same label. Move the controls: the top row shows original images, the bottom row the same
# images after mixing (the block grid in red). Beside them: how many blocks an image has (N_b),
# how alike a mixed image still is to its original (SSIM) compared with a random image of the
# same label (the floor), and the paper's restoration count.

# %% tags=["parameters"]
datasets: list = ["faces", "mnist"]  # data sets offered in the explorer and the sweep below

# %%
from pbmlib.workbench.widgets import MixingExplorer, QuickSweepPanel

explorer = MixingExplorer(tuple(datasets))
explorer.widget

# %% [markdown]
# ## Sweep one setting
# Vary one setting over a few values on the data set chosen above (the others stay as set
# there) and see how SSIM, and with "train small CNN" the accuracy a model reaches on clean
# test images, follow it.

# %%
panel = QuickSweepPanel(tuple(datasets), explorer=explorer)
panel.widget
