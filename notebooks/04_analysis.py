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
import pbmlib.workbench.analysis as analysis
from pbmlib.workbench.plotting import (plot_block_heatmap, plot_metric_vs_blocks, plot_mixing_time,
                                       plot_privacy_utility, plot_ssim_vs_blocks)
from pbmlib.workbench.results import collect_results, project_path, write_results

parameters = dict(sweep_dir=sweep_dir, output_dir=output_dir)
out = project_path(output_dir)
out.mkdir(parents=True, exist_ok=True)
tables = collect_results(project_path(sweep_dir))
mixing, study = tables["mixing"], tables["study"]
mixing.to_csv(out / "mixing_runs.csv", index=False)
study.to_csv(out / "study_rows.csv", index=False)
print(f"{mixing['run_id'].nunique() if len(mixing) else 0} mixing runs, "
      f"{study['run_id'].nunique() if len(study) else 0} study runs ({len(study)} rows) in {sweep_dir}")
figures = []

# %% [markdown]
# ## Accuracy and loss against the number of blocks (Figs. 3/4)
# One figure per stage: rows of one stage share data, model settings and seeds.

# %%
training = analysis.mixed_vs_reference(study)
for stage, frame in training.groupby("stage"):
    baseline = frame.groupby("model_name")["test_accuracy_original"].mean()
    for metric, label in (("test_accuracy_mean", "clean test accuracy"), ("test_loss_mean", "clean test loss")):
        fig = plot_metric_vs_blocks(frame, metric, hue="model_name", ylabel=label,
                                    baseline=baseline if metric == "test_accuracy_mean" else None)
        fig.axes[0].set_title(f"stage {stage}")
        name = f"{metric.split('_')[1]}_vs_blocks_{stage}.png"
        fig.savefig(out / name, dpi=120)
        figures.append(name)
if training.empty:
    print("no trained block-mixing runs with a reference in this sweep")

# %% [markdown]
# ## Accuracy per block height and width (Figs. 5-7)

# %%
for (stage, model), frame in training.groupby(["stage", "model_name"]):
    fig = plot_block_heatmap(frame, "test_accuracy_mean", title=f"{stage}, {model}: clean test accuracy")
    fig.savefig(out / f"accuracy_by_block_{stage}_{model}.png", dpi=120)
    figures.append(f"accuracy_by_block_{stage}_{model}.png")

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
gains = analysis.augmentation_gain(study)
gains.round(3)

# %% [markdown]
# ## Privacy against utility (from `05_privacy` and `06_schemes` runs)
# One point per protection setting: clean-test accuracy against the success of the strongest
# attack (re-identification top-1). Further left is more private; higher is more useful.

# %%
points = analysis.frontier(study)
for stage, frame in points.groupby("stage"):
    fig = plot_privacy_utility(frame)
    fig.axes[0].set_title(f"stage {stage}")
    fig.savefig(out / f"privacy_utility_{stage}.png", dpi=120)
    figures.append(f"privacy_utility_{stage}.png")
columns = ["stage", "setting", "ssim_mean", "ssim_floor_mean", "reid_top1", "reid_top1_attack", "membership_auc",
           "blocks_verbatim_fraction", "log10_restoration_probability", "test_accuracy_mean"]
points[[c for c in columns if c in points]].round(3) if len(points) else "no scorecard runs in this sweep"

# %%
summary = write_results(
    out, "analysis", parameters, n_runs=int(study["run_id"].nunique() if len(study) else 0)
    + int(mixing["run_id"].nunique() if len(mixing) else 0), n_study_rows=len(study), figures=figures,
    accuracy_overview=overview.reset_index().to_dict(orient="records") if overview is not None else [],
    ssim_by_blocks=ssim_table.reset_index().to_dict(orient="records") if ssim_table is not None else [],
    lowest_test_accuracy=float(training["test_accuracy_mean"].min()) if len(training) else None,
    highest_test_accuracy=float(training["test_accuracy_mean"].max()) if len(training) else None)
print("wrote", summary, "and", figures)
