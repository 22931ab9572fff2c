"""Data: loaders for the bundled and user data sets, the paper's augmentation (numpy tier)."""
