"""The shipped notebooks: tracked as jupytext percent scripts, generated as ``.ipynb`` where needed.

``notebooks/<name>.py`` is the source that git tracks; ``notebooks/<name>.ipynb`` is a
working copy that git ignores. JupyterLab (with jupytext) opens and saves the working
copy and writes its inputs back to the script, so running or saving a notebook in Lab
leaves the checkout clean: outputs, widget state and the kernel Lab picked stay in the
ignored ``.ipynb`` (``jupytext.toml`` keeps only the title and cell tags in the scripts).

Papermill, ``pbm sweep`` and Voila need an ``.ipynb``: :func:`ensure_notebook` writes it
from the script when it is missing or its code differs from the script (the script wins;
outputs of unchanged cells are kept), and leaves it untouched otherwise.

Run ``python -m pbmlib.workbench.notebooks [FOLDER]`` to write them all (default
``notebooks/`` of the checkout).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .._fs import write_bytes_atomic

__all__ = ["ensure_notebook", "ensure_notebooks", "KERNELSPEC"]

#: The kernel a generated notebook names: the Python that runs it (papermill and Voila need one).
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def _inputs(notebook) -> list:
    return [(cell.cell_type, cell.source, list(cell.metadata.get("tags", []))) for cell in notebook.cells]


def ensure_notebook(path: str | os.PathLike) -> Path:
    """Make sure the notebook ``path`` exists and runs the code of its paired script.

    Parameters
    ----------
    path : path of an ``.ipynb``
        Its script is the ``.py`` of the same name beside it. Without one (a notebook of
        your own), ``path`` is returned unchanged.

    Returns
    -------
    Path
        ``path``. It is written (atomically) when it is missing, unreadable, or its cells,
        tags or title differ from the script's; outputs of cells whose code is unchanged
        are kept, and so is the kernel it names. Otherwise it is not touched.
    """
    import jupytext
    import nbformat
    from jupytext.combine import combine_inputs_with_outputs

    path = Path(path)
    script = path.with_suffix(".py")
    if path.suffix != ".ipynb" or not script.is_file():
        return path
    source = jupytext.read(script, fmt="py:percent")
    current = None
    if path.is_file():
        try:
            current = nbformat.read(str(path), as_version=4)
        except Exception:  # noqa: BLE001 - an unreadable working copy is rewritten from its script
            current = None
    if (current is not None and _inputs(current) == _inputs(source) and "kernelspec" in current.metadata
            and current.metadata.get("title") == source.metadata.get("title")):
        return path
    notebook = combine_inputs_with_outputs(source, current) if current is not None else source
    notebook.metadata["kernelspec"] = (current.metadata.get("kernelspec") if current is not None else None) \
        or dict(KERNELSPEC)
    if "title" in source.metadata:
        notebook.metadata["title"] = source.metadata["title"]
    write_bytes_atomic(path, nbformat.writes(notebook).encode())
    return path


def ensure_notebooks(folder: str | os.PathLike) -> list[Path]:
    """:func:`ensure_notebook` for every percent script in ``folder``; returns the notebooks."""
    return [ensure_notebook(script.with_suffix(".ipynb")) for script in sorted(Path(folder).glob("*.py"))]


def checkout_notebooks() -> Path:
    """The ``notebooks/`` folder of this checkout of pbm-workbench."""
    return Path(__file__).resolve().parents[2] / "notebooks"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    folder = Path(argv[0]) if argv else checkout_notebooks()
    if not folder.is_dir():
        print(f"error: {folder} is not a folder of notebook scripts", file=sys.stderr)
        return 2
    for path in ensure_notebooks(folder):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
