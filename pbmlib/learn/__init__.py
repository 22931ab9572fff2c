"""Keras tier: models, adaptation and augmentation layers, training, learned inversion, and the studies
that train on protected sets."""
