# ---
# jupyter:
#   title: 02 Training on original vs mixed data
# ---

# %% [markdown]
# # 02 · Training on original vs mixed data
# The paper's utility test: train the same model with the same settings and seeds on the
# original training set and on its mixed copy, and measure both on the same **clean** test set.

# %% tags=["parameters"]
dataset: str = "faces"  # "faces", "mnist", "fashion_mnist" or a folder of label/*.png
test_dataset: str = ""  # a test set of its own (e.g. "fashion_mnist_test"); "" holds out test_fraction of dataset
image_size: int = 0  # resize to image_size x image_size first; 0 keeps the size
model_name: str = "small_cnn"  # small_cnn, resnet50, vgg16, inceptionv3, densenet121
block_height: int = 5  # L_b, block height in pixels
block_width: int = 5  # W_b, block width in pixels
n_donors: int = 10  # N_s
rounds: int = 1  # N_t
p: float = 0.5  # replacement probability
test_fraction: float = 0.3  # share of each class held out as the clean test set
epochs: int = 10  # training epochs
batch_size: int = 32  # batch size
optimizer: str = "adam"  # adam, sgd or rmsprop
learning_rate: float = 0.001  # learning rate
repeats: int = 2  # trainings per condition and split (the paper uses 5)
n_splits: int = 1  # independent splits (and seeds); the accuracy cost's interval resamples the test images of each
seed: int = 0  # seed for the split, the mixing and the first training
baseline_cache: str = ""  # folder of trained baselines shared by a sweep's runs ("" trains the original here)
backup_dir: str = ""  # folder that makes the trainings resumable (a sweep gives each run one); "" for none
output_dir: str = "papermill_runs/manual/02_training"  # where results.json, CSV and PNG go

# %%
from pbmlib.learn.learner import KerasLearner
from pbmlib.study import run_study, study_from_parameters
from pbmlib.workbench.results import project_path, write_study

parameters = dict(dataset=dataset, test_dataset=test_dataset, image_size=image_size, model_name=model_name,
                  block_height=block_height, block_width=block_width, n_donors=n_donors, rounds=rounds, p=p,
                  test_fraction=test_fraction, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                  learning_rate=learning_rate, repeats=repeats, n_splits=n_splits, seed=seed, output_dir=output_dir)
plan = study_from_parameters(parameters)  # the unprotected reference and PBM at this block
data, test = plan.load()
out = project_path(output_dir)
learner = KerasLearner(baseline_cache=baseline_cache or None, backup_dir=backup_dir or None)

# %%
table, records = run_study(data, plan.conditions, test=test, seed=plan.seed, learner=learner, progress=True,
                           **plan.options)
table[["setting", "n_blocks", "test_accuracy_mean", "test_accuracy_std", "test_loss_mean", "accuracy_drop",
       "accuracy_drop_low", "accuracy_drop_high", "ssim_mean", "ssim_floor_mean"]].round(4)

# %%
print("wrote", write_study(out, parameters, table, records))
