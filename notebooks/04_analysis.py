# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Analysis of a sweep
# Reads every finished run under a `papermill_runs/<sweep>/` folder and draws the paper's
# views: accuracy and loss against N_b per model (Figs. 3/4), accuracy per block height and
# width (Figs. 5-7), the overview table (Tables II/III), SSIM against N_b (Table IV, here with
# its chance floor), mixing time against dataset size and N_b (Figs. 14/15), and, where the
# sweep ran `05_privacy`, the privacy/utility frontier.
# Everything is drawn from the runs' `results.json` files, not from kernel state.

# %% tags=["parameters"]
sweep_dir: str = "papermill_runs/default"  # the sweep folder to analyse
output_dir: str = "papermill_runs/default/analysis"  # where figures, tables and results.json go

# %%
from pathlib import Path

import pbmlib.workbench.analysis as analysis
from pbmlib.workbench.plotting import (plot_block_heatmap, plot_metric_vs_blocks, plot_mixing_time, plot_privacy_utility,
                             plot_ssim_vs_blocks)
from pbmlib.workbench.sweeps import collect_results, collect_tables, write_results

parameters = dict(sweep_dir=sweep_dir, output_dir=output_dir)
out = Path(output_dir)
out.mkdir(parents=True, exist_ok=True)
results = collect_results(sweep_dir)
results.to_csv(out / "all_runs.csv", index=False)
parts = analysis.split_by_kind(results)
print({kind: len(frame) for kind, frame in parts.items()}, "runs found in", sweep_dir)
figures = []

# %% [markdown]
# ## Accuracy and loss against the number of blocks (Figs. 3/4)

# %%
training = parts["training"]
if len(training):
    baseline = training.groupby("model_name")["test_accuracy_original"].mean()
    fig = plot_metric_vs_blocks(training, "test_accuracy", hue="model_name", ylabel="clean test accuracy",
                                baseline=baseline)
    fig.savefig(out / "accuracy_vs_blocks.png", dpi=120)
    fig = plot_metric_vs_blocks(training, "test_loss", hue="model_name", ylabel="clean test loss")
    fig.savefig(out / "loss_vs_blocks.png", dpi=120)
    figures += ["accuracy_vs_blocks.png", "loss_vs_blocks.png"]
else:
    print("no training runs in this sweep")

# %% [markdown]
# ## Accuracy per block height and width (Figs. 5-7)

# %%
for model, frame in training.groupby("model_name") if len(training) else []:
    fig = plot_block_heatmap(frame, "test_accuracy", title=f"{model}: clean test accuracy")
    fig.savefig(out / f"accuracy_by_block_{model}.png", dpi=120)
    figures.append(f"accuracy_by_block_{model}.png")

# %% [markdown]
# ## Overview: original, highest, lowest and mean accuracy (Tables II/III)

# %%
overview = analysis.accuracy_overview(training) if len(training) else None
if overview is not None:
    overview.to_csv(out / "accuracy_overview.csv")
overview

# %% [markdown]
# ## SSIM against N_b (Table IV), with the chance floor

# %%
mixing = parts["mixing"]
ssim_table = analysis.ssim_by_blocks(mixing) if len(mixing) else None
if ssim_table is not None:
    ssim_table.to_csv(out / "ssim_by_blocks.csv")
    fig = plot_ssim_vs_blocks(mixing)
    fig.savefig(out / "ssim_vs_blocks.png", dpi=120)
    figures.append("ssim_vs_blocks.png")
ssim_table

# %% [markdown]
# ## Mixing time against dataset size and N_b (Figs. 14/15)

# %%
timed = [(name, frame) for name, frame in mixing.groupby("dataset") if frame["n_images"].nunique() > 1] \
    if len(mixing) else []
for name, frame in timed:
    fig = plot_mixing_time(frame, title=f"{name}: mixing time")
    fig.savefig(out / f"mixing_time_{name}.png", dpi=120)
    figures.append(f"mixing_time_{name}.png")
if not timed:
    print("no dataset was mixed at several sizes: no mixing-time curve")

# %% [markdown]
# ## Augmentation on the mixed set

# %%
augmentation = parts["augmentation"]
columns = [c for c in ("model_name", "n_blocks", "augment_mode", "test_accuracy_no_augment", "test_accuracy",
                       "augmentation_gain") if c in augmentation]
augmentation[columns]

# %% [markdown]
# ## Privacy against utility (from `05_privacy` runs)
# One point per protection setting: clean-test accuracy against the success of the strongest
# attack (re-identification top-1). Further left is more private; higher is more useful.

# %%
scorecards = collect_tables(sweep_dir, "scorecard.csv")
if len(scorecards) and "test_accuracy" in scorecards:
    fig = plot_privacy_utility(scorecards.dropna(subset=["test_accuracy"]))
    fig.savefig(out / "privacy_utility.png", dpi=120)
    figures.append("privacy_utility.png")
    scorecards.to_csv(out / "scorecards.csv", index=False)
columns = [c for c in ("setting", "ssim_mean", "ssim_floor_mean", "reid_top1", "reid_top1_attack", "membership_auc",
                       "blocks_verbatim_fraction", "log10_restoration_probability", "test_accuracy")
           if c in scorecards]
scorecards[columns].round(3) if len(scorecards) else "no 05_privacy runs in this sweep"

# %%
summary = write_results(
    out, parameters, n_runs=len(results), n_training_runs=len(training), n_mixing_runs=len(mixing),
    n_privacy_settings=len(scorecards),
    figures=figures,
    accuracy_overview=overview.reset_index().to_dict(orient="records") if overview is not None else [],
    ssim_by_blocks=ssim_table.reset_index().to_dict(orient="records") if ssim_table is not None else [],
    lowest_test_accuracy=float(training["test_accuracy"].min()) if len(training) else None,
    highest_test_accuracy=float(training["test_accuracy"].max()) if len(training) else None)
print("wrote", summary, "and", figures)
