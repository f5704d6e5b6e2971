"""Escaped HTML built from Python values: a tiny template layer on the standard library.

Every text that reaches a page passes through `escape` unless it is already `Html`, the only type
that may carry markup; test ids, check names, chaos outputs and file names are data from the run,
and a `<` in any of them must show as a `<`, not open a tag. Pages are self-contained (inline CSS,
images as data URIs, no script) so they open from a CI artifact or a mail attachment as they are.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from pathlib import Path


class Html(str):
    """Markup that is safe to insert as it is (built by this module's functions)."""

    __slots__ = ()


Content = Html | str | int | float | None
_VOID = frozenset({"img", "meta", "br", "hr", "link"})


def escape(value: Content) -> Html:
    """`value` as page text: markup stays, anything else is escaped (None shows as a dash)."""
    if isinstance(value, Html):
        return value
    if value is None:
        return Html("–")
    return Html(html.escape(str(value), quote=True))


def join(parts: Iterable[Content], separator: str = "") -> Html:
    return Html(escape(separator).join(escape(part) for part in parts))


def tag(name: str, /, *children: Content, **attributes: str | None) -> Html:
    """`<name attr="...">children</name>`; attribute values are escaped, `class_` is `class`."""
    rendered = "".join(
        f' {key.rstrip("_").replace("_", "-")}="{escape(value)}"'
        for key, value in attributes.items()
        if value is not None
    )
    if name in _VOID:
        return Html(f"<{name}{rendered}>")
    return Html(f"<{name}{rendered}>{join(children)}</{name}>")


def table(
    headers: Sequence[Content],
    rows: Iterable[Sequence[Content]],
    class_: str | None = None,
    row_classes: Sequence[str | None] | None = None,
) -> Html:
    """A table with a header row; `row_classes[i]` styles row i (e.g. `failed`)."""
    head = tag("thead", tag("tr", *(tag("th", header) for header in headers)))
    body_rows = []
    for index, row in enumerate(rows):
        style = row_classes[index] if row_classes is not None and index < len(row_classes) else None
        body_rows.append(tag("tr", *(tag("td", cell) for cell in row), class_=style))
    return tag("table", head, tag("tbody", *body_rows), class_=class_)


def definitions(items: Iterable[tuple[Content, Content]]) -> Html:
    """A two-column table of names and values (settings, figures)."""
    rows = [tag("tr", tag("th", name), tag("td", value)) for name, value in items]
    return tag("table", tag("tbody", *rows), class_="facts")


def png_data_uri(path: Path) -> str:
    """The PNG at `path` as a data URI: the page carries its plots and needs no file beside it."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def figure(path: Path, caption: str) -> Html:
    """An inlined plot with its caption, or a line saying it is missing (the page still renders)."""
    if not path.is_file():
        return tag("p", f"{path.name}: not drawn for this run", class_="missing")
    return tag(
        "figure",
        tag("img", src=png_data_uri(path), alt=caption, width="100%"),
        tag("figcaption", caption),
    )


def link(href: str, text: Content) -> Html:
    return tag("a", text, href=href)


def page(title: str, *body: Content) -> Html:
    """A whole document: UTF-8, inline CSS, no script and no external resource."""
    return Html(
        "<!DOCTYPE html>\n"
        + tag(
            "html",
            tag(
                "head",
                tag("meta", charset="utf-8"),
                tag("meta", name="viewport", content="width=device-width, initial-scale=1"),
                tag("title", title),
                tag("style", Html(CSS)),
            ),
            tag("body", *body),
            lang="en",
        )
        + "\n"
    )


CSS = """
:root { --ok: #1e7b3c; --bad: #b3261e; --ink: #1d1d1f; --muted: #5f6368; --line: #dadce0; }
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--ink); margin: 0 auto; padding: 12px 20px 40px; max-width: 1400px; }
h1 { font-size: 18px; margin: 0 0 8px; font-weight: 600; }
h1 small { color: var(--muted); font-weight: 400; }
h2 { font-size: 15px; margin: 22px 0 6px; border-bottom: 1px solid var(--line);
     padding-bottom: 3px; }
.verdict { display: flex; align-items: center; gap: 16px; flex-wrap: wrap; padding: 8px 14px;
           border-radius: 6px; color: white; margin-bottom: 10px; }
.verdict.passed { background: var(--ok); }
.verdict.failed { background: var(--bad); }
.verdict.none { background: var(--muted); }
.verdict strong { font-size: 20px; }
.verdict .why { font-size: 14px; }
.verdict a { color: white; font-weight: 600; }
.tiles { display: flex; gap: 8px; flex-wrap: wrap; margin: 0 0 10px; }
.tile { border: 1px solid var(--line); border-radius: 6px; padding: 4px 10px; min-width: 92px; }
.tile b { display: block; font-size: 17px; }
.tile span { color: var(--muted); font-size: 12px; }
.tile.bad { border-color: var(--bad); color: var(--bad); }
.top { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 20px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid var(--line);
         vertical-align: top; }
thead th { background: #f1f3f4; font-weight: 600; }
td { white-space: nowrap; }
td:last-child, table.faults td:nth-child(3), table.letters td:nth-child(2), table.facts td {
  white-space: normal; word-break: break-word; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td { background: #fce8e6; color: var(--bad); font-weight: 600; }
tr.passed td:first-child { color: var(--ok); }
tr.kill td { background: #fdf1e6; }
tr.kill td:nth-child(2) { color: var(--bad); font-weight: 600; }
table.facts th { width: 38%; font-weight: 500; color: var(--muted); }
.plots { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; margin-top: 16px; }
figure { margin: 0; }
.wide { max-width: 1100px; }
figure img { display: block; border: 1px solid var(--line); border-radius: 4px; }
figcaption, .note, .missing { color: var(--muted); font-size: 12px; }
code { font-size: 12px; }
@media (max-width: 900px) { .top, .plots { grid-template-columns: 1fr; } }
"""
