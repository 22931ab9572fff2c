# ---
# jupyter:
#   title: 04 Analysis of a sweep
# ---

# %% [markdown]
# # 04 · Analysis of a sweep
# Reads every finished run under a `papermill_runs/<sweep>/` folder and draws the paper's
# views: accuracy and loss against N_b per model (Figs. 3/4), accuracy per block height and
# width (Figs. 5-7), the overview table (Tables II/III), SSIM against N_b (Table IV, here with
# its chance floor), mixing time against dataset size and N_b (Figs. 14/15), and, where the
# sweep ran `05_privacy` or `06_schemes`, the privacy/utility frontier.
# Everything is drawn from the runs' `results.json` files, not from kernel state; `pbm report`
# turns the executed notebook into one HTML file to share.

# %% tags=["parameters"]
sweep_dir: str = "papermill_runs/default"  # the sweep folder to analyse
output_dir: str = "papermill_runs/default/analysis"  # where figures, tables and results.json go

# %%
import pbmlib.workbench.analysis as analysis
from pbmlib.workbench.analysis import Figures, say, show_table
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
figures = Figures(out)
n_mixing = mixing["run_id"].nunique() if len(mixing) else 0
n_study = study["run_id"].nunique() if len(study) else 0
say(f"This sweep holds {n_mixing} mixing run{'s' * (n_mixing != 1)} and {n_study} training or audit "
    f"run{'s' * (n_study != 1)} ({len(study)} rows).")

# %% [markdown]
# ## Accuracy and loss against the number of blocks (Figs. 3/4)
# One figure per sweep stage and metric: rows of one stage share data, model settings and
# seeds. The dashed line and its band are the same model trained on the original images.

# %%
training = analysis.mixed_vs_reference(study)
for stage, frame in training.groupby("stage"):
    about = analysis.describe_data(frame)
    for metric, label, word in (("test_accuracy_mean", "clean test accuracy", "accuracy"),
                                ("test_loss_mean", "clean test loss", "loss")):
        original = "test_accuracy_original" if word == "accuracy" else "test_loss_original"
        baseline = frame.groupby("model_name").agg(mean=(original, "mean"), sd=(f"{original}_std", "mean"))
        fig = plot_metric_vs_blocks(frame, metric, hue="model_name", ylabel=label, baseline=baseline,
                                    title=f"Clean test {word} against N_b, {about}")
        figures.show(fig, f"{word}_vs_blocks_{stage}.png",
                     f"Clean test {word} of {about} trained on mixed images, against the number of blocks N_b "
                     f"(sweep stage '{stage}'); points: one block shape each, error bars ± 1 sd over repeats.",
                     analysis.reading_vs_blocks(frame, metric))
if training.empty:
    say("No trained block-mixing runs with a reference in this sweep: no accuracy figures.")

# %% [markdown]
# ## Accuracy per block height and width (Figs. 5-7)

# %%
for (stage, model), frame in training.groupby(["stage", "model_name"]):
    about = analysis.describe_data(frame)
    fig = plot_block_heatmap(frame, "test_accuracy_mean", title=f"Clean test accuracy by block size, {about}")
    figures.show(fig, f"accuracy_by_block_{stage}_{model}.png",
                 f"Clean test accuracy of {about} trained on mixed images, per block height (rows) and width "
                 f"(columns), mean over repeats (sweep stage '{stage}').", analysis.reading_heatmap(frame))
if training.empty:
    say("No trained block-mixing runs in this sweep: no block-size heatmap.")

# %% [markdown]
# ## Overview: original, highest, lowest and mean accuracy (Tables II/III)

# %%
overview = analysis.accuracy_overview(training) if len(training) else None
if overview is not None:
    overview.to_csv(out / "accuracy_overview.csv")
    show_table(analysis.overview_table(training),
               "Clean test accuracy trained on the originals and on the mixed sets (highest, lowest and mean "
               "over the block shapes of each sweep stage).")
else:
    say("No trained block-mixing runs in this sweep: no overview table.")

# %% [markdown]
# ## SSIM against N_b (Table IV), with the chance floor

# %%
ssim_table = analysis.ssim_by_blocks(mixing) if len(mixing) else None
if ssim_table is not None:
    ssim_table.to_csv(out / "ssim_by_blocks.csv")
    figures.show(plot_ssim_vs_blocks(mixing, title="SSIM of mixed images to their originals against N_b"),
                 "ssim_vs_blocks.png",
                 "Mean SSIM of each mixed image to its original against the number of blocks N_b, one line per "
                 "data set and size; dotted: the floor, SSIM of an original to a random image of its class.",
                 analysis.reading_ssim(mixing))
    show_table(analysis.ssim_table(mixing), "SSIM per data set, size and number of blocks, with the floor and "
                                            "the paper's brute-force restoration count.")
else:
    say("No mixing runs in this sweep: no SSIM figure or table.")

# %% [markdown]
# ## Mixing time against dataset size and N_b (Figs. 14/15)

# %%
timed = [(name, frame) for name, frame in mixing.groupby("dataset") if frame["n_images"].nunique() > 1] \
    if len(mixing) else []
for name, frame in timed:
    shown = analysis.describe_data(frame)
    figures.show(plot_mixing_time(frame, title=f"Mixing time against the number of images, {shown}"),
                 f"mixing_time_{analysis.describe_data(frame).replace('on ', '')}.png",
                 f"Time to mix {shown} against the number of images, one line per number of blocks N_b (one "
                 f"CPU process; each point the median of repeated timings).", analysis.reading_mixing_time(frame))
if not timed:
    say("No data set was mixed at several sizes in this sweep: no mixing-time curve.")

# %% [markdown]
# ## Augmentation on the mixed set

# %%
gains = analysis.augmentation_gain(study)
if len(gains):
    show_table(analysis.augmentation_table(gains), "Clean test accuracy of the same mixed set trained without "
                                                   "and with the paper's augmentation (mean over repeats).")
else:
    say("No augmentation runs in this sweep.")

# %% [markdown]
# ## Privacy against utility (from `05_privacy` and `06_schemes` runs)
# One point per protection setting: clean-test accuracy against the success of the strongest
# attack. Further left is more private; higher is more useful.

# %%
points = analysis.frontier(study)
for stage, frame in points.groupby("stage"):
    about = analysis.describe_data(frame)
    for kind, word in (("reid", "re-identification"), ("membership", "membership inference")):
        x = analysis.strongest(frame, kind)
        if x not in frame or frame[x].isna().all():
            continue
        figures.show(plot_privacy_utility(frame, x=x, title=f"Clean test accuracy against {word}, {about}"),
                     f"privacy_utility_{kind}_{stage}.png",
                     f"Each protection setting of sweep stage '{stage}' ({about}): clean test accuracy (mean ± 1 sd "
                     f"over repeats) against the strongest {word} attack on the released images; dotted: chance.",
                     analysis.reading_frontier(frame, x))
if len(points):
    show_table(analysis.privacy_table(points), "What each attack achieved on the released images, beside its "
                                               "chance, and the clean test accuracy.")
    decided = points[points["meets_target"].notna()] if "meets_target" in points else points.iloc[0:0]
    if len(decided):
        show_table(analysis.target_table(decided), "Each setting against the target (membership AUC, "
                   "re-identification, accuracy cost), decided only where the 95 % interval decides it: 'met' when "
                   "its far end meets the target, 'not met' when its near end fails it, 'undecided' otherwise.")
else:
    say("No audited runs (05_privacy, 06_schemes, 07_frontier) in this sweep: no privacy figures.")

# %%
summary = write_results(
    out, "analysis", parameters, n_runs=int(n_mixing + n_study), n_study_rows=len(study), figures=figures.names,
    accuracy_overview=overview.reset_index().to_dict(orient="records") if overview is not None else [],
    ssim_by_blocks=ssim_table.reset_index().to_dict(orient="records") if ssim_table is not None else [],
    lowest_test_accuracy=float(training["test_accuracy_mean"].min()) if len(training) else None,
    highest_test_accuracy=float(training["test_accuracy_mean"].max()) if len(training) else None)
