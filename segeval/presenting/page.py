"""A tiny HTML toolkit for the reports: escaping helpers, sortable tables, the image viewer, and the
page's own CSS and script (inline: the page opens from disk, with no server and nothing fetched).

Everything that reaches the page passes through :func:`esc` (text) or :func:`attr` (attribute
values); the helpers return strings and never touch files.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

__all__ = ["esc", "attr", "Cell", "table", "img", "pager", "para", "div", "link", "item", "mark", "swatch", "Viewer",
           "document", "section"]


def esc(text: object) -> str:
    """Text content, HTML-escaped."""
    return html.escape(str(text), quote=False)


def attr(text: object) -> str:
    """An attribute value, HTML-escaped (quotes included)."""
    return html.escape(str(text), quote=True)


@dataclass
class Cell:
    """One table cell: its HTML (already escaped), and the value it sorts by (None sorts last)."""

    html: str
    sort: float | str | None = None
    cls: str = ""


def _sort_attr(v: float | str | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ' data-v=""'
    if isinstance(v, str):
        return f' data-v="{attr(v)}"'
    return f' data-v="{float(v)!r}"'


def table(heads: Sequence[str], rows: Iterable[Sequence[Cell | str]], *, cls: str = "", sortable: bool = True,
          numeric: Sequence[bool] | None = None) -> str:
    """A table; with ``sortable`` a click on a column head sorts by it (undefined values last).

    ``heads`` are plain text; a str cell is plain text sorting by itself.
    """
    numeric = numeric or [False] * len(heads)
    ths = "".join(f'<th{" class=num" if n else ""} data-type="{"num" if n else "text"}">{esc(h)}</th>'
                  for h, n in zip(heads, numeric, strict=True))
    body = []
    for row in rows:
        tds = []
        for c, n in zip(row, numeric, strict=True):
            c = c if isinstance(c, Cell) else Cell(esc(c), c)
            klass = " ".join(filter(None, ["num" if n else "", c.cls]))
            tds.append(f"<td{f' class={chr(34)}{klass}{chr(34)}' if klass else ''}{_sort_attr(c.sort)}>{c.html}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    klass = " ".join(filter(None, ["data", "sortable" if sortable else "", cls]))
    return f'<table class="{klass}"><thead><tr>{ths}</tr></thead><tbody>\n' + "\n".join(body) + "\n</tbody></table>"


def img(src: str, width: int, height: int, alt: str, cls: str = "", **data: str) -> str:
    """An <img> with a relative, URL-quoted src and its pixel size."""
    extra = "".join(f' data-{k.replace("_", "-")}="{attr(quote(v))}"' for k, v in data.items())
    klass = f' class="{cls}"' if cls else ""
    return (f'<img{klass} src="{attr(quote(src))}" width="{width}" height="{height}" alt="{attr(alt)}"'
            f"{extra}>")


def pager(pages: Sequence[tuple[str, int, int]], alt: str) -> str:
    """One image of several (relative path, width, height), with buttons to switch page."""
    src, w, h = pages[0]
    if len(pages) == 1:
        return img(src, w, h, alt)
    buttons = "".join(f'<button type="button" data-src="{attr(quote(s))}" data-w="{pw}" data-h="{ph}"'
                      f'{" class=on" if i == 0 else ""}>{i + 1}</button>' for i, (s, pw, ph) in enumerate(pages))
    return f'<div class="pager"><div class="seg">page {buttons}</div>{img(src, w, h, alt, "paged")}</div>'


def para(html: str, cls: str = "") -> str:
    """A paragraph of HTML (text in it already passed through :func:`esc`); ``cls`` e.g. ``"muted small"``."""
    return f'<p class="{attr(cls)}">{html}</p>' if cls else f"<p>{html}</p>"


def div(cls: str, html: str) -> str:
    """A ``<div>`` of class ``cls`` around HTML."""
    return f'<div class="{attr(cls)}">{html}</div>'


def link(href: str, text: str) -> str:
    """A link to a relative path."""
    return f'<a href="{attr(quote(href))}">{esc(text)}</a>'


def item(html: str) -> str:
    """A legend item of HTML (see :func:`swatch`)."""
    return f'<span class="item">{html}</span>'


def mark(rgb: Sequence[int]) -> str:
    """A small square of one colour, to stand before a class name."""
    r, g, b = (int(v) for v in rgb)
    return f'<span class="sw" style="background: rgb({r},{g},{b})"></span>'


def swatch(rgb: Sequence[int], label: str) -> str:
    """A legend item: the colour's :func:`mark` and its label."""
    return item(mark(rgb) + esc(label))


@dataclass
class Viewer:
    """One image in the viewer: a base picture with one switchable layer on top of it.

    layers : (key, button label, relative path) — the first is shown at first.
    filters : (label, relative path) of versions of the first layer (e.g. one class's FP/FN overlay),
        chosen from a menu; the first is the one shown at first (the first layer's own path).
    """

    title: str
    base: str
    width: int
    height: int
    layers: list[tuple[str, str, str]]
    filters: list[tuple[str, str]] = field(default_factory=list)
    filter_label: str = "class"
    info: str = ""  # HTML
    note: str = ""
    opacity: int = 85

    def html(self) -> str:
        first_key, _, first_src = self.layers[0]
        data = {f"src_{k}": src for k, _, src in self.layers}
        stage = (f'<div class="stage" style="width:{self.width}px;height:{self.height}px">'
                 + img(self.base, self.width, self.height, f"{self.title} image", "base")
                 + img(first_src, self.width, self.height, f"{self.title} overlay", "layer", **data)
                 + "</div>")
        buttons = "".join(f'<button type="button" data-show="{attr(k)}"{" class=on" if k == first_key else ""}>'
                          f"{esc(label)}</button>" for k, label, _ in self.layers)
        controls = [f'<div class="seg">{buttons}</div>',
                    f'<label>opacity <input type="range" class="opacity" min="0" max="100" value="{self.opacity}">'
                    "</label>"]
        if self.filters:
            opts = "".join(f'<option value="{attr(quote(src))}">{esc(label)}</option>' for label, src in self.filters)
            controls.append(f'<label>{esc(self.filter_label)} <select class="filter">{opts}</select></label>')
        note = f'<div class="note">{esc(self.note)}</div>' if self.note else ""
        return (f'<div class="viewer" data-layer="{attr(first_key)}" data-first="{attr(first_key)}">'
                f'<div class="vtitle">{esc(self.title)}</div>{stage}'
                f'<div class="side"><div class="controls">{"".join(controls)}</div>'
                f'<div class="numbers">{self.info}</div>{note}</div></div>')


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; color: #222;
       max-width: 1320px; padding: 0 16px; font-size: 14px; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
nav a { margin-right: 14px; } .muted { color: #666; } .small { font-size: 12px; }
table.data { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
table.data th, table.data td { border-bottom: 1px solid #e4e4e4; padding: 3px 10px; text-align: left;
                                white-space: nowrap; }
table.data th { background: #f4f4f4; position: sticky; top: 0; z-index: 1; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th::after { content: " \\2195"; color: #aaa; font-size: 11px; }
table.sortable th[aria-sort=ascending]::after { content: " \\25B2"; color: #333; }
table.sortable th[aria-sort=descending]::after { content: " \\25BC"; color: #333; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.absent { color: #999; font-style: italic; } td.bad { color: #b00; font-weight: 600; } td.good { color: #070; }
.scroll { max-height: 520px; overflow: auto; display: inline-block; border: 1px solid #e4e4e4; }
.scroll table.data { margin: 0; }
.plots img { display: block; margin: 12px 0; max-width: 100%; height: auto; }
.pager .seg { margin-top: 10px; } .pager .seg button { min-width: 2.2em; }
.viewer { display: grid; grid-template-columns: auto minmax(260px, 1fr); grid-template-rows: auto auto;
          column-gap: 16px; margin: 18px 0 26px; }
.viewer .vtitle { grid-column: 1 / 3; font-weight: 600; margin-bottom: 4px; }
.stage { position: relative; max-width: 100%; }
.stage img { position: absolute; left: 0; top: 0; display: block; image-rendering: pixelated; }
.controls { display: flex; flex-direction: column; gap: 8px; align-items: flex-start; }
.seg button { border: 1px solid #999; background: #fff; padding: 3px 10px; margin-right: -1px; cursor: pointer;
              font-size: 13px; }
.seg button.on { background: #333; color: #fff; border-color: #333; }
.numbers { font-size: 13px; margin-top: 10px; line-height: 1.5; } .note { font-size: 12px; color: #a40; }
.sw { display: inline-block; width: 14px; height: 14px; border: 1px solid #888; vertical-align: middle;
      margin-right: 4px; }
.legend span.item { display: inline-block; margin: 2px 14px 2px 0; font-size: 13px; }
table.settings td { font-family: monospace; white-space: normal; }
"""

# Sorting, the viewer's controls, and on <body data-images="decoded/total"> how many <img> decoded.
SCRIPT = r"""
(function () {
  function key(td, num) {
    var v = td.getAttribute("data-v");
    if (v === null) v = td.textContent;
    if (v === "") return null;
    return num ? parseFloat(v) : v.toLowerCase();
  }
  function sortBy(th) {
    var table = th.closest("table"), body = table.tBodies[0];
    var col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var num = th.getAttribute("data-type") === "num";
    var asc = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows).map(function (r, i) {
      return { r: r, k: key(r.cells[col], num), i: i };
    });
    rows.sort(function (a, b) {
      if (a.k === null || b.k === null) return (a.k === null) - (b.k === null) || a.i - b.i;
      var d = a.k < b.k ? -1 : a.k > b.k ? 1 : 0;
      return (asc ? d : -d) || a.i - b.i;
    });
    rows.forEach(function (x) { body.appendChild(x.r); });
  }
  function show(viewer, layer) {
    var im = viewer.querySelector("img.layer");
    viewer.setAttribute("data-layer", layer);
    im.src = im.getAttribute("data-src-" + layer);
    viewer.querySelectorAll("button[data-show]").forEach(function (b) {
      b.classList.toggle("on", b.getAttribute("data-show") === layer);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".pager").forEach(function (p) {
      var im = p.querySelector("img.paged");
      p.querySelectorAll("button[data-src]").forEach(function (b) {
        b.addEventListener("click", function () {
          im.src = b.getAttribute("data-src");
          im.width = +b.getAttribute("data-w");
          im.height = +b.getAttribute("data-h");
          p.querySelectorAll("button").forEach(function (o) { o.classList.toggle("on", o === b); });
        });
      });
    });
    document.querySelectorAll("table.sortable th").forEach(function (th) {
      th.addEventListener("click", function () { sortBy(th); });
    });
    document.querySelectorAll(".viewer").forEach(function (v) {
      var im = v.querySelector("img.layer"), first = v.getAttribute("data-first");
      v.querySelectorAll("button[data-show]").forEach(function (b) {
        b.addEventListener("click", function () { show(v, b.getAttribute("data-show")); });
      });
      var range = v.querySelector("input.opacity");
      function opacity() { im.style.opacity = range.value / 100; }
      range.addEventListener("input", opacity);
      opacity();
      var sel = v.querySelector("select.filter");
      if (sel) sel.addEventListener("change", function () {
        im.setAttribute("data-src-" + first, sel.value);
        show(v, first);
      });
    });
  });
  window.addEventListener("load", function () {
    var imgs = Array.prototype.slice.call(document.images);
    var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
    document.body.setAttribute("data-images", ok + "/" + imgs.length);
  });
})();
"""


def document(title: str, sections: Iterable[str], nav: Sequence[tuple[str, str]] = ()) -> str:
    """The whole page: head (CSS, script), a title, a table of contents, the sections."""
    links = "".join(f'<a href="#{attr(anchor)}">{esc(label)}</a>' for anchor, label in nav)
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{CSS}</style><script>{SCRIPT}</script></head><body>",
        f"<h1>{esc(title)}</h1>", f"<nav>{links}</nav>" if links else "", *sections, "</body></html>\n"])


def section(anchor: str, title: str, *parts: str) -> str:
    return f'<section id="{attr(anchor)}"><h2>{esc(title)}</h2>' + "\n".join(parts) + "</section>"
