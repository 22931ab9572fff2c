"""pbm sweep --plan: runs, trainings after baseline reuse, images, estimated time."""

from pathlib import Path

import pytest

from pbmlib.workbench.plan import plan_sweep
from pbmlib.workbench.sweeps import load_sweep

ROOT = Path(__file__).resolve().parents[1]


def test_default_sweep_plan_counts_trainings_and_reused_baselines():
    table = plan_sweep(load_sweep(ROOT / "sweeps" / "default.yaml"), measure=False, images_per_second=1000)
    rows = table.set_index("stage")
    assert rows["runs"].sum() == 31
    # 7 training runs: 7 mixed + 7 baselines, of which one is trained (same data, split, model, settings)
    assert rows.loc["training", "trainings"] == 14 and rows.loc["training", "trainings_after_reuse"] == 8
    assert rows.loc["training", "images_per_epoch"] == 140  # 200 faces, 30 % held out
    assert rows.loc["augmentation", "images_per_epoch"] == 280  # offline: one augmented copy each
    assert rows.loc["mixing", "trainings"] == 0
    assert rows.loc["training", "hours_at_1000_images_per_second"] == pytest.approx(8 * 140 * 36 / 1000 / 3600)


@pytest.mark.slow
def test_plan_command_measures_and_prints(capsys, tmp_path):
    from pbmlib.workbench.cli import main

    assert main(["sweep", str(ROOT / "sweeps" / "default.yaml"), "--plan", "--images-per-second", "2400",
                 "--output-root", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "31 runs, 34 trainings, 28 after reusing baselines" in out and "estimated total" in out
    assert not (tmp_path / "runs").exists()  # the plan runs and writes nothing


def test_plan_counts_lira_shadow_models_once_per_split():
    table = plan_sweep(load_sweep(ROOT / "sweeps" / "frontier.yaml"), measure=False)
    row = table.set_index("stage").loc["frontier"]
    assert row["shadow_models"] == 16 * 5  # 16 per split, 5 splits, shared by the 13 settings
    trainings = 13 * 5 * 140 * 12 * 2  # settings x splits x training images x epochs x repeats
    shadows = 16 * 5 * (140 + 60) // 2 * 12  # each shadow on half of the 200 candidates
    assert row["image_epochs"] == trainings + shadows
