"""Small HTML helpers: every piece of text goes through `esc`, tables come from polars
frames, figures are embedded as data URIs (one self-contained file, no network)."""

from __future__ import annotations

import base64
import html
import json
import math

import polars as pl

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       max-width: 980px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
p.meta { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.9em; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #e4e4e4; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f5f5f5; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.9em; }
.missing { background: #fff6e0; border-left: 4px solid #e0a800; padding: 0.5em 0.8em; }
.glance { background: #f3f7fb; border-left: 4px solid #4c72b0; padding: 0.4em 1em; }
details { margin: 0.4em 0; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 0.82em; }
ol.refs li { margin-bottom: 0.3em; font-size: 0.92em; }
"""


def esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value, decimals: int = 3) -> str:
    """Numbers for people: thousands separators, a few decimals, '–' for missing."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if value.is_integer() and abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:,.{decimals}f}"
    return str(value)


def table(frame: pl.DataFrame, headers: dict[str, str] | None = None, decimals: int = 3) -> str:
    """An HTML table of a frame; `headers` renames columns (and picks their order)."""
    headers = headers or {c: c for c in frame.columns}
    cols = [c for c in headers if c in frame.columns]
    numeric = {c for c in cols if frame.schema[c].is_numeric()}
    head = "".join(
        f'<th class="num">{esc(headers[c])}</th>' if c in numeric else f"<th>{esc(headers[c])}</th>"
        for c in cols
    )
    body = []
    for row in frame.select(cols).iter_rows():
        cells = "".join(
            f'<td class="num">{esc(fmt(v, decimals))}</td>'
            if c in numeric
            else f"<td>{esc(fmt(v, decimals))}</td>"
            for c, v in zip(cols, row, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figure(data: bytes, fmt_: str, alt: str, caption: str | None = None) -> str:
    mime = "image/svg+xml" if fmt_ == "svg" else "image/png"
    src = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{src}" alt="{esc(alt)}">{cap}</figure>'


def paragraph(text: str) -> str:
    return f"<p>{esc(text)}</p>"


def missing(text: str) -> str:
    return f'<p class="missing">Not in this report: {esc(text)}.</p>'


def details(summary: str, obj) -> str:
    body = json.dumps(obj, indent=2, sort_keys=True, default=str, ensure_ascii=False)
    return f"<details><summary>{esc(summary)}</summary><pre>{esc(body)}</pre></details>"


def page(title: str, body: list[str]) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        # No network: nothing is loaded from anywhere, not even fonts.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">\n"
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
