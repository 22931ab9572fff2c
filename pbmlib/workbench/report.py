"""``pbm report SWEEP_DIR``: one self-contained HTML file of a sweep's analysis, to share.

The executed analysis notebook of the sweep (``<sweep>/analysis/04_analysis.ipynb``)
is converted by nbconvert with its code hidden and its figures embedded, after a header
that says what produced it: the sweep, its parameters (the config), the git commit of the
code and the library versions, from the sweep's latest record (``sweeps/<time>.json``).
Nothing in the file points at another file, so it can be mailed or attached as it is.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

from .._fs import write_bytes_atomic

__all__ = ["write_report", "REPORT_NAME"]

REPORT_NAME = "report.html"


def _latest_record(sweep_dir: Path) -> dict:
    records = sorted((sweep_dir / "sweeps").glob("*.json"))
    for path in reversed(records):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if record.get("analysis"):
            return record
    return json.loads(records[-1].read_text()) if records else {}


def _header(sweep_dir: Path, record: dict) -> str:
    config = record.get("config", {})
    versions = record.get("versions", {})
    commit = record.get("git_commit") or "not a git checkout"
    if record.get("git_dirty"):
        commit += " (with uncommitted changes)"
    stages = "".join(
        f"<li><b>{html.escape(str(s.get('name')))}</b>: {html.escape(Path(str(s.get('notebook'))).name)}, "
        f"parameters <code>{html.escape(json.dumps(s.get('parameters', {})))}</code>, grid "
        f"<code>{html.escape(json.dumps(s.get('grid', {})))}</code></li>" for s in config.get("stages", []))
    version_text = ", ".join(f"{html.escape(k)} {html.escape(str(v))}" for k, v in versions.items())
    return (f"<h1>Sweep {html.escape(str(config.get('name', sweep_dir.name)))}</h1>"
            f"<p>Folder <code>{html.escape(str(sweep_dir))}</code>; sweep started {html.escape(str(record.get('started')))}, "
            f"ended {html.escape(str(record.get('ended')))}; {len(record.get('finished', [])) + len(record.get('skipped', []))} "
            f"runs finished, {len(record.get('failed', {}))} failed.</p>"
            f"<p>Code: git commit <code>{html.escape(commit)}</code>.<br>Versions: {version_text}.</p>"
            f"<ul>{stages}</ul>")


def write_report(sweep_dir: str | os.PathLike, output: str | os.PathLike | None = None) -> Path:
    """Write the sweep's analysis as one HTML file (default ``<sweep_dir>/report.html``).

    Raises
    ------
    ValueError
        When the sweep has no executed analysis notebook (run ``pbm sweep CONFIG`` with its
        analysis first).
    """
    import nbformat
    from nbconvert import HTMLExporter

    sweep_dir = Path(sweep_dir).resolve()
    notebooks = sorted((sweep_dir / "analysis").glob("*.ipynb"))
    if not notebooks:
        raise ValueError(f"{sweep_dir} has no executed analysis notebook in analysis/; run the sweep with its "
                         f"analysis (pbm sweep CONFIG, without --no-analysis) first")
    notebook = nbformat.read(str(notebooks[0]), as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_markdown_cell(_header(sweep_dir, _latest_record(sweep_dir))))
    notebook.metadata["title"] = f"Sweep {sweep_dir.name}"
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
                            embed_images=True)
    body, _ = exporter.from_notebook_node(notebook)
    path = Path(output) if output is not None else sweep_dir / REPORT_NAME
    write_bytes_atomic(path, body.encode())
    return path
