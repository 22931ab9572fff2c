# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 00 · Explore Pixel Block Mixing interactively
# Move the sliders: originals (top) beside mixed images (bottom, block grid in red), the mean
# SSIM beside its floor (SSIM to a random image of the same class), and the paper's
# brute-force restoration probability. Block sizes offered are those that divide the image.
# Then sweep one parameter with the panel below (tick "train small CNN" for accuracy too).

# %% tags=["parameters"]
datasets: list = ["faces", "mnist"]  # datasets offered in the explorer
sweep_dataset: str = "faces"  # dataset of the quick-sweep panel

# %%
from pbmlib.workbench.widgets import MixingExplorer, QuickSweepPanel

explorer = MixingExplorer(tuple(datasets))
explorer.widget

# %%
panel = QuickSweepPanel(sweep_dataset)
panel.widget
