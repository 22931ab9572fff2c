# ---
# jupyter:
#   title: 03 Data augmentation on the mixed set
# ---

# %% [markdown]
# # 03 · Data augmentation on the mixed set
# The paper's flip / rotation / brightness augmentation applied to the **mixed** training
# images (never to the test set), against no augmentation, on the same clean test set.

# %% tags=["parameters"]
dataset: str = "faces"  # "faces", "mnist", "fashion_mnist" or a folder of label/*.png
image_size: int = 0  # resize to image_size x image_size first; 0 keeps the size
model_name: str = "small_cnn"  # small_cnn, resnet50, vgg16, inceptionv3, densenet121
block_height: int = 5  # L_b, block height in pixels
block_width: int = 1  # W_b, block width in pixels
n_donors: int = 10  # N_s
rounds: int = 1  # N_t
p: float = 0.5  # replacement probability
augment_mode: str = "offline"  # "offline" (expand the set, as the paper) or "online" (Keras layers)
augment_copies: int = 1  # offline: augmented copies per image
flip: bool = True  # random horizontal flip
rotation: float = 15.0  # maximum rotation in degrees
brightness: float = 0.2  # maximum relative brightness change
test_fraction: float = 0.3  # share of each class held out as the clean test set
epochs: int = 10  # training epochs
batch_size: int = 32  # batch size
repeats: int = 2  # trainings per condition and split
n_splits: int = 1  # independent splits (and seeds)
seed: int = 0  # seed for the split, the mixing, the augmentation and the first training
backup_dir: str = ""  # folder that makes the trainings resumable (a sweep gives each run one); "" for none
output_dir: str = "papermill_runs/manual/03_augmentation"  # where results.json, CSV and PNG go

# %%
from pbmlib.data.augmentation import augment_images
from pbmlib.learn.learner import KerasLearner
from pbmlib.study import run_study, study_from_parameters
from pbmlib.workbench.plotting import data_name, show_pairs
from pbmlib.workbench.results import project_path, write_study

parameters = dict(dataset=dataset, image_size=image_size, model_name=model_name, block_height=block_height,
                  block_width=block_width, n_donors=n_donors, rounds=rounds, p=p, augment_mode=augment_mode,
                  augment_copies=augment_copies, flip=flip, rotation=rotation, brightness=brightness,
                  test_fraction=test_fraction, epochs=epochs, batch_size=batch_size, repeats=repeats,
                  n_splits=n_splits, seed=seed, output_dir=output_dir)
plan = study_from_parameters(parameters)  # PBM at this block, without and with the augmentation
data, test = plan.load()
out = project_path(output_dir)
out.mkdir(parents=True, exist_ok=True)
mixing, augmentation = plan.conditions[1].scheme, plan.conditions[1].augment
mixed = mixing.fit_protect(data.images[:64], data.labels[:64], seed=seed)[:8]
show_pairs(mixed, augment_images(mixed, augmentation=augmentation, seed=seed), n=8, rows=("mixed", "augmented"),
           title=f"{data_name(dataset)}: mixed images ({block_height}x{block_width} blocks) and their "
                 f"{augment_mode} augmentation").savefig(out / "augmentation_examples.png", dpi=120)

# %%
table, records = run_study(data, plan.conditions, test=test, seed=plan.seed,
                           learner=KerasLearner(backup_dir=backup_dir or None), progress=True, **plan.options)
table[["setting", "n_blocks", "test_accuracy_mean", "test_accuracy_std", "test_loss_mean"]].round(4)

# %%
print("wrote", write_study(out, parameters, table, records))
