"""Top tier: results files, papermill sweeps, analysis tables, plots, widgets and the ``pbm`` command."""
