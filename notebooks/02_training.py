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
# # 02 · Training on original vs mixed data
# The paper's utility test: train the same model with the same settings and seeds on the
# original training set and on its mixed copy, and measure both on the same **clean** test set.

# %% tags=["parameters"]
dataset: str = "faces"  # "faces", "mnist", "fashion_mnist" or a folder of label/*.png
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
repeats: int = 2  # trainings per condition (the paper uses 5)
seed: int = 0  # seed for the split, the mixing and the first training
output_dir: str = "papermill_runs/manual/02_training"  # where results.json, CSV and PNG go

# %%
from pathlib import Path

import pbmlib
from pbmlib.workbench.plotting import save_training_figures
from pbmlib.workbench.sweeps import write_results
from pbmlib.learn.studies import split_dataset
from pbmlib.learn.training import compare_training

parameters = dict(dataset=dataset, image_size=image_size, model_name=model_name, block_height=block_height,
                  block_width=block_width, n_donors=n_donors, rounds=rounds, p=p, test_fraction=test_fraction,
                  epochs=epochs, batch_size=batch_size, optimizer=optimizer, learning_rate=learning_rate,
                  repeats=repeats, seed=seed, output_dir=output_dir)
out = Path(output_dir)
out.mkdir(parents=True, exist_ok=True)
data = pbmlib.load_dataset(dataset, size=image_size or None)
train, test = split_dataset(data, test_fraction=test_fraction, seed=seed)
block = (block_height, block_width)
mixed = pbmlib.mix_blocks(*train, block=block, n_donors=n_donors, rounds=rounds, p=p, seed=seed)
print(f"{len(train[1])} training / {len(test[1])} clean test images; N_b = {pbmlib.n_blocks(train[0].shape[1:], block)}")

# %%
table, records = compare_training(model_name, {"original": train, "mixed": (mixed, train[1])}, test,
                                  epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                                  learning_rate=learning_rate, repeats=repeats, seed=seed)
table.to_csv(out / "comparison.csv")
table.round(4)

# %%
save_training_figures(records, out)

# %%
results = write_results(
    out, parameters, n_blocks=pbmlib.n_blocks(train[0].shape[1:], block),
    test_accuracy=table.loc["mixed", "test_accuracy_mean"], test_accuracy_std=table.loc["mixed", "test_accuracy_std"],
    test_loss=table.loc["mixed", "test_loss_mean"],
    test_accuracy_original=table.loc["original", "test_accuracy_mean"],
    test_accuracy_original_std=table.loc["original", "test_accuracy_std"],
    test_loss_original=table.loc["original", "test_loss_mean"],
    accuracy_drop=table.loc["mixed", "accuracy_drop"],
    test_accuracy_runs=[r["test_accuracy"] for r in records["mixed"]["runs"]],
    train_images_per_second=records["mixed"]["runs"][0]["train_images_per_second"])
print("wrote", results)
