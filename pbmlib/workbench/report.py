"""``pbm report SWEEP_DIR``: one self-contained HTML file of a sweep's analysis, to mail as it is.

The executed analysis notebook of the sweep (``<sweep>/analysis/04_analysis.ipynb``) is
converted by nbconvert with its code hidden and its figures embedded, under a header that
says what the sweep is and a table of contents, and above a last section that says how it
was made: the sweep's stages and parameters, the git commit of the code and the library
versions, from the sweep's latest record (``sweeps/<time>.json``).

What makes it shareable:

- nothing is fetched: no require.js, MathJax, Mermaid or widget scripts (the template
  leaves them out), images are ``data:`` URIs, the styles are inline;
- no absolute path: paths are written relative to the sweep folder, the sweep by its name;
- only what a reader needs: the notebook's own introduction (which is about the notebook)
  is replaced by the report's header, and the analysis prints no file names.
"""

from __future__ import annotations

import html
import json
import os
import re
from datetime import datetime
from pathlib import Path

from .._fs import write_bytes_atomic

__all__ = ["write_report", "REPORT_NAME"]

REPORT_NAME = "report.html"

# The lab template without a single external request, with a header, contents and a provenance section.
_TEMPLATE = r"""{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}
<style type="text/css">
  body { max-width: 1100px; margin: 0 auto; padding: 0 1.5em 3em;
         font-family: var(--jp-content-font-family, system-ui, sans-serif); }
  .pbm-header h1 { margin-bottom: 0.2em; }
  .pbm-lede { font-size: 1.05em; color: #333; }
  .pbm-toc ol { line-height: 1.6; }
  table.pbm-table, table.pbm-meta { border-collapse: collapse; margin: 0.5em 0 1.2em; font-size: 0.92em; }
  .jp-RenderedHTMLCommon table.pbm-table th, .jp-RenderedHTMLCommon table.pbm-table td,
  table.pbm-meta th, table.pbm-meta td {
    border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; vertical-align: top; }
  table.pbm-table th, table.pbm-meta th { background: #f3f3f3; }
  .jp-RenderedImage img { max-width: 100%; height: auto; }
  code { font-size: 0.92em; }
</style>
{%- endblock extra_css -%}
{%- block body_header -%}
{{ super() }}
{{ resources.pbm_header }}
{%- endblock body_header -%}
{%- block body_footer -%}
{{ resources.pbm_footer }}
{{ super() }}
{%- endblock body_footer -%}
"""


def _latest_record(sweep_dir: Path) -> dict:
    """The latest record with an analysis (else the latest readable one); {} without any."""
    records = sorted((sweep_dir / "sweeps").glob("*.json"))
    readable = []
    for path in reversed(records):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or not all(isinstance(record.get(key, {}), dict)
                                                   for key in ("config", "versions")):
            continue  # not a record of this workbench's sweeps (hand-edited or damaged): not used
        if record.get("analysis"):
            return record
        readable.append(record)
    return readable[0] if readable else {}


def _shareable(value, sweep_dir: Path):
    """``value`` with every absolute path in it written relative to the sweep folder."""
    if isinstance(value, dict):
        return {k: _shareable(v, sweep_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [_shareable(v, sweep_dir) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        return os.path.relpath(value, sweep_dir)
    return value


def _when(stamp) -> str:
    try:
        return datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%S%z").strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return "unknown"


def _duration(record: dict) -> str:
    try:
        start, end = (datetime.strptime(str(record[k]), "%Y-%m-%dT%H:%M:%S%z") for k in ("started", "ended"))
    except (KeyError, ValueError):
        return ""
    minutes = (end - start).total_seconds() / 60
    return f" ({minutes:.0f} min)" if minutes >= 1 else f" ({(end - start).total_seconds():.0f} s)"


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _header(name: str, record: dict) -> str:
    finished = len(record.get("finished", [])) + len(record.get("skipped", []))
    failed = len(record.get("failed", {}) or {})
    stages = (record.get("config") or {}).get("stages", [])
    when = (f" It ran from {_when(record.get('started'))} to {_when(record.get('ended'))}{_duration(record)}."
            if record.get("started") else "")
    what = (f"The analysis of the sweep <b>{html.escape(name)}</b>: {_count(finished, 'run')} finished"
            f"{f', {failed} failed' if failed else ''} in {_count(len(stages), 'stage')}"
            f"{': ' + ', '.join(html.escape(str(s.get('name'))) for s in stages) if stages else ''}.{when} "
            f"Figures and tables are drawn from the runs' result files; the last section says how it was made.")
    return (f'<div class="pbm-header"><h1>Sweep {html.escape(name)}</h1><p class="pbm-lede">{what}</p>'
            f'<nav class="pbm-toc"><h2 id="contents">Contents</h2><!--pbm-toc--></nav></div>')


def _provenance(record: dict, sweep_dir: Path) -> str:
    if not record:
        return ('<h2 id="how-this-was-made">How this was made</h2><p>The sweep folder holds no readable record '
                '(<code>sweeps/*.json</code>): its parameters, code version and libraries are not known.</p>')
    config = _shareable(record.get("config") or {}, sweep_dir)
    rows = "".join(
        f"<tr><td>{html.escape(str(s.get('name')))}</td><td>{html.escape(Path(str(s.get('notebook'))).stem)}</td>"
        f"<td><code>{html.escape(json.dumps(s.get('parameters') or {}))}</code></td>"
        f"<td><code>{html.escape(json.dumps(s.get('grid') or {}))}</code></td></tr>" for s in config.get("stages", []))
    commit = record.get("git_commit") or "not a git checkout"
    if record.get("git_dirty"):
        commit += " (with uncommitted changes)"
    versions = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                       for k, v in (record.get("versions") or {}).items() if k != "platform")
    return ('<h2 id="how-this-was-made">How this was made</h2>'
            "<p>Each stage runs one notebook of pbm-workbench over the cartesian product of its grid, with the "
            "fixed parameters beside it.</p>"
            '<table class="pbm-meta"><tr><th>stage</th><th>notebook</th><th>fixed parameters</th><th>grid</th></tr>'
            f"{rows}</table>"
            f"<p>Code: pbm-workbench at git commit <code>{html.escape(commit)}</code>.</p>"
            f'<table class="pbm-meta"><tr><th>library</th><th>version</th></tr>{versions}</table>')


def _report_notebook(path: Path):
    """The executed analysis notebook without its own introduction and its parameter cells."""
    import nbformat

    notebook = nbformat.read(str(path), as_version=4)
    cells = [c for c in notebook.cells
             if not ({"parameters", "injected-parameters"} & set(c.metadata.get("tags", [])))]
    if cells and cells[0].cell_type == "markdown" and cells[0].source.lstrip().startswith("# "):
        cells = cells[1:]  # "# 04 · Analysis of a sweep": the report has its own title
    for cell in cells:
        if cell.cell_type == "code":  # the code is hidden; a stray printed line or warning is not for readers
            cell.outputs = [o for o in cell.outputs if o.get("output_type") != "stream"]
    notebook.cells = cells
    notebook.metadata.pop("widgets", None)
    return notebook


def _contents(body: str) -> str:
    entries = re.findall(r'<h2 id="([^"]+)">(.*?)(?:<a class="anchor-link"[^>]*>[^<]*</a>)?</h2>', body, re.S)
    items = "".join(f'<li><a href="#{anchor}">{title.strip()}</a></li>' for anchor, title in entries
                    if anchor != "contents")
    return f"<ol>{items}</ol>"


def write_report(sweep_dir: str | os.PathLike, output: str | os.PathLike | None = None) -> Path:
    """Write the sweep's analysis as one HTML file (default ``<sweep_dir>/report.html``; an ``output``
    that is a folder gets ``report.html`` inside it). Sweep records that are not readable records of
    this workbench (hand-edited, damaged) are left out.

    Raises
    ------
    ValueError
        When the sweep has no executed analysis notebook (run ``pbm sweep CONFIG`` with its
        analysis first).
    """
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    sweep_dir = Path(sweep_dir).resolve()
    notebooks = sorted((sweep_dir / "analysis").glob("*.ipynb"))
    if not notebooks:
        raise ValueError(f"{sweep_dir} has no executed analysis notebook in analysis/; run the sweep with its "
                         f"analysis (pbm sweep CONFIG, without --no-analysis) first")
    record = _latest_record(sweep_dir)
    name = str((record.get("config") or {}).get("name") or sweep_dir.name)
    notebook = _report_notebook(notebooks[0])
    notebook.metadata["title"] = f"Sweep {name}: report"
    exporter = HTMLExporter(extra_loaders=[DictLoader({"pbm_report.html.j2": _TEMPLATE})],
                            template_file="pbm_report.html.j2", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True, embed_images=True)
    body, _ = exporter.from_notebook_node(notebook, resources={"pbm_header": _header(name, record),
                                                               "pbm_footer": _provenance(record, sweep_dir)})
    body = body.replace("<!--pbm-toc-->", _contents(body), 1)
    body = body.replace(str(sweep_dir), name)  # a path printed by the analysis itself
    path = Path(output) if output is not None else sweep_dir / REPORT_NAME
    if path.is_dir():  # a folder: the report goes into it
        path = path / REPORT_NAME
    write_bytes_atomic(path, body.encode())
    return path
