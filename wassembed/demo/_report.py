"""One-page reports: a plain-text results table, and HTML + Markdown pages showing figures and numbers.

Nothing here computes anything: the functions format what they are given (rows of a table, figures with
captions, a JSON-able dict of numbers). The HTML page is self-contained apart from the PNG files it links
next to it (relative paths), with every piece of text escaped.

Examples
--------
>>> print(format_table([("pairs", "1,000"), ("Pearson r", "0.99")], headers=("quantity", "value")))
quantity   value
---------  -----
pairs      1,000
Pearson r  0.99
"""


from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Figure", "format_table", "markdown_table", "to_jsonable", "write_report"]


@dataclass(frozen=True)
class Figure:
    """A figure of a report: a file next to the report, a heading and a caption.

    Parameters
    ----------
    file : str
        PNG file name, relative to the report's folder.
    title : str
        Short heading.
    caption : str
        What the figure shows and how it was computed (plain text).
    """

    file: str
    title: str
    caption: str


def format_table(rows, headers=None) -> str:
    """Rows of strings as an aligned plain-text table (for a terminal).

    Parameters
    ----------
    rows : sequence of sequences of str
    headers : sequence of str, optional

    Returns
    -------
    str

    Examples
    --------
    >>> print(format_table([("a", "1"), ("bb", "22")]))
    a   1
    bb  22
    """
    rows = [[str(c) for c in r] for r in rows]
    allrows = ([list(map(str, headers))] if headers is not None else []) + rows
    n = max(len(r) for r in allrows)
    widths = [max(len(r[c]) if c < len(r) else 0 for r in allrows) for c in range(n)]
    lines = []
    for k, r in enumerate(allrows):
        lines.append("  ".join(r[c].ljust(widths[c]) for c in range(len(r))).rstrip())
        if headers is not None and k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows, headers=("quantity", "value")) -> str:
    """Rows of strings as a GitHub-flavoured Markdown table (``|`` in cells escaped).

    Examples
    --------
    >>> print(markdown_table([("r", "0.99")]))
    | quantity | value |
    |---|---|
    | r | 0.99 |
    """
    esc = lambda s: str(s).replace("|", "\\|")
    out = ["| " + " | ".join(map(esc, headers)) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return "\n".join(out)


def to_jsonable(obj):
    """Convert numpy scalars/arrays, paths and tuples to JSON types; non-finite floats become ``None``.

    Examples
    --------
    >>> import numpy as np
    >>> to_jsonable({"a": np.float32(0.5), "b": (1, np.int64(2)), "c": float("nan")})
    {'a': 0.5, 'b': [1, 2], 'c': None}
    """
    try:
        import numpy as np
    except ModuleNotFoundError:  # pragma: no cover
        np = None
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if np is not None and isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if np is not None and isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    return str(obj)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:1em 0} td,th{border:1px solid #ccc;padding:.3em .7em;text-align:left}
th{background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1.2em 0} figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.92em;color:#444;margin-top:.4em} .note{font-size:.9em;color:#555}
pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.85em}
"""


def write_report(out, *, title: str, rows, figures, numbers: dict | None = None, intro: str = "",
                 notes=(), basename: str = "report") -> dict:
    """Write ``report.html`` and ``report.md`` into ``out``: title, results table, figures, notes.

    Parameters
    ----------
    out : str or path
        Folder holding the figures (created if needed).
    title : str
        Page title.
    rows : sequence of (str, str)
        The results table (quantity, value).
    figures : sequence of Figure
        Figures, in order; their files are linked relative to ``out`` (missing files are listed as such).
    numbers : dict, optional
        JSON-able numbers, written to ``<basename>.json`` and linked from the page.
    intro : str
        A paragraph under the title.
    notes : sequence of str
        Remarks listed at the end (plain text).
    basename : str
        File name stem of the outputs.

    Returns
    -------
    dict
        ``{"html": Path, "markdown": Path, "json": Path or None}``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     paths = write_report(d, title="Demo", rows=[("pairs", "10")],
    ...                          figures=[Figure("x.png", "Scatter", "a <caption>")], numbers={"pairs": 10})
    ...     text = paths["html"].read_text()
    ...     ("a &lt;caption&gt;" in text, sorted(p.name for p in paths.values()))
    (True, ['report.html', 'report.json', 'report.md'])
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    e = html.escape
    json_path = None
    if numbers is not None:
        json_path = out / f"{basename}.json"
        json_path.write_text(json.dumps(to_jsonable(numbers), indent=2) + "\n")
    # -- HTML
    h = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
         f"<title>{e(title)}</title><style>{_CSS}</style></head><body>", f"<h1>{e(title)}</h1>"]
    if intro:
        h.append(f"<p>{e(intro)}</p>")
    h.append("<h2>Results</h2><table><tr><th>quantity</th><th>value</th></tr>")
    for r in rows:
        h.append(f"<tr><td>{e(str(r[0]))}</td><td class=\"num\">{e(str(r[1]))}</td></tr>")
    h.append("</table>")
    if json_path is not None:
        h.append(f'<p class="note">All numbers: <a href="{e(json_path.name)}">{e(json_path.name)}</a>.</p>')
    h.append("<h2>Figures</h2>")
    for k, f in enumerate(figures, 1):
        exists = (out / f.file).exists()
        img = f'<img src="{e(f.file)}" alt="{e(f.title)}">' if exists else f"<p><em>missing: {e(f.file)}</em></p>"
        h.append(f"<figure id=\"fig{k}\"><h3>Figure {k}. {e(f.title)}</h3>{img}"
                 f"<figcaption>{e(f.caption)}</figcaption></figure>")
    if notes:
        h.append("<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
    h.append("</body></html>")
    html_path = out / f"{basename}.html"
    html_path.write_text("\n".join(h) + "\n", encoding="utf-8")
    # -- Markdown
    md = [f"# {title}", ""]
    if intro:
        md += [intro, ""]
    md += ["## Results", "", markdown_table(rows), ""]
    if json_path is not None:
        md += [f"All numbers: [{json_path.name}]({json_path.name}).", ""]
    md += ["## Figures", ""]
    for k, f in enumerate(figures, 1):
        md += [f"### Figure {k}. {f.title}", "", f"![{f.title}]({f.file})", "", f.caption, ""]
    if notes:
        md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    md_path = out / f"{basename}.md"
    md_path.write_text("\n".join(md), encoding="utf-8")
    return {"html": html_path, "markdown": md_path, "json": json_path}
