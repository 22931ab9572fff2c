"""Keras tier: models, adaptation and augmentation layers, training, learned inversion, the learner the
numpy-tier study trains through, shadow models.

Importing this package or its modules' names changes no process state: Keras is imported
quietly (:func:`pbmlib.learn.quiet.quiet_keras`) by the entry points that need it.
"""
