"""Drawing a comparison of runs (:class:`segeval.comparing.compare.Comparison`): the rich table that
``segeval compare`` prints, the Markdown report (``--markdown``) and the JSON object (``--format json``).

Presents, never recomputes: every number comes from the comparison and its tests; the order of the
classes (largest drop first) and the best-in-row marks are the only things decided here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from segeval.comparing.compare import (
    SUMMARY_METRICS,
    SURFACE_METRICS,
    Comparison,
    GateResult,
    Interval,
    RandomizationResult,
)
from segeval.core.format import fmt, fmt_p, level, none_if_nan, p_phrase

__all__ = ["COMPARE_FORMAT", "P_DEFINITION", "comparison_table", "comparison_markdown", "comparison_dict"]

COMPARE_FORMAT = "segeval-compare/2"
P_DEFINITION = (
    "p = share of the swap assignments (BASE's and NEW's counts of each image exchanged or not) whose "
    "NEW - BASE is at most the observed one; one-sided: a small p is evidence that NEW is worse than BASE; "
    "a drop is significant when p < alpha"
)

F = NDArray[np.float64]


def _class_order(cmp: Comparison) -> list[int]:
    """Classes by their largest drop in any later run first; undefined differences last."""
    diff = cmp.class_diff
    worst = np.full(cmp.n_classes, np.nan)
    defined = ~np.isnan(diff).all(axis=0)
    worst[defined] = np.nanmin(diff[:, defined], axis=0)
    return [int(c) for c in np.argsort(np.nan_to_num(worst, nan=np.inf), kind="stable")]


def _best(values: F) -> NDArray[np.bool_]:
    """Mark the highest defined value(s) of a row (all runs tied: none marked)."""
    if np.isnan(values).all():
        return np.zeros(values.shape, bool)
    top = np.nanmax(values)
    best = values == top
    return np.zeros(values.shape, bool) if best.all() else best


def _diff_style(d: float, worse: bool = False, better: bool = False) -> str:
    if math.isnan(d) or d == 0:
        return "dim"
    return ("bold red" if worse else "red") if d < 0 else ("bold green" if better else "green")


def _footer(cmp: Comparison, mark: str = "!") -> str:
    boot = next((b for b in cmp.bootstrap if b is not None), None)
    test = next((t for t in cmp.tests if t is not None), None)
    parts = []
    if boot is None:
        parts.append("no bootstrap (--bootstrap 0): no intervals")
    else:
        parts.append(f"CI = {level(boot.alpha)} paired-bootstrap percentile interval of NEW - BASE ({boot.n} "
                     f"resamples of the {boot.n_images} images, seed {boot.seed})")
    if test is None:
        parts.append("no randomization test (--permutations 0): no p-values")
    else:
        family = f"{_family(cmp, 0)} " if cmp.n_runs == 2 else ""
        parts.append(f"p: {test.method_text()}; {P_DEFINITION}; class p Holm-adjusted over the {family}classes "
                     f"with a defined difference (family-wise error at most alpha); {mark} = significant drop at "
                     f"alpha {cmp.alpha:g}")
    return "; ".join(parts)


def _family(cmp: Comparison, j: int) -> int:
    return int(np.count_nonzero(~np.isnan(cmp.class_p_holm(j))))


def comparison_table(cmp: Comparison, gates: Sequence[GateResult] = ()) -> Group:
    """A rich rendering: per-class IoU and summary metrics of the runs, then the gates."""
    heads = _short_heads(cmp)
    legend = ", ".join(f"{h} = {label}" for h, label in zip(heads, cmp.labels, strict=True))
    title = f"segeval compare: {cmp.n_images} images, {cmp.n_classes} classes; {legend}"
    parts: list[Any] = [_two_run_tables(cmp, title) if cmp.n_runs == 2 else _multi_run_tables(cmp, title)]
    parts.append(Text(_footer(cmp), style="dim"))
    if _extra_footer(cmp):
        parts.append(Text(_extra_footer(cmp), style="dim"))
    for note in cmp.notes:
        parts.append(Text(f"note: {note}", style="yellow"))
    for g in gates:
        parts.append(Text(g.message, style="green" if g.passed else "bold red"))
    return Group(*parts)


def _short_heads(cmp: Comparison) -> list[str]:
    """Column headings: BASE and NEW, or BASE, NEW 1, NEW 2, ... (file names go in the title)."""
    return ["BASE", "NEW"] if cmp.n_runs == 2 else ["BASE", *(f"NEW {j}" for j in range(1, cmp.n_runs))]


def _fill(table: Table, columns: Sequence[tuple[str, str]], rows: Sequence[tuple[Sequence[Any], bool]]) -> Table:
    """Add columns ``(header, justify)`` and rows ``(cells, end_section)``; right-justified (number)
    columns get the width of their longest cell, so that numbers never wrap (headers may)."""
    for i, (header, justify) in enumerate(columns):
        if justify == "right":
            width = max((len(str(cells[i])) for cells, _ in rows), default=0)
            table.add_column(header, justify="right", min_width=width, overflow="fold")
        else:
            table.add_column(header)
    for cells, end_section in rows:
        table.add_row(*cells, end_section=end_section)
    return table


def _ci_cell(iv: Interval | None) -> str:
    return "—" if iv is None else f"[{fmt(iv.low, sign=True)}, {fmt(iv.high, sign=True)}]"


@dataclass(frozen=True)
class _Row:
    """One boundary or surface summary row of later run j: values, difference, interval, p, marks."""

    key: str
    label: str
    base: float
    new: float
    interval: Interval | None
    p: float | None
    assignments: int
    worse: bool
    lower_better: bool

    @property
    def diff(self) -> float:
        return self.new - self.base

    @property
    def style_diff(self) -> float:
        """The difference signed so that negative is worse (for the colours and arrows)."""
        return -self.diff if self.lower_better else self.diff


def _extra_rows(cmp: Comparison, j: int) -> list[_Row]:
    """The boundary and surface summary rows of later run ``j`` (none when not compared)."""
    rows = []
    r = j + 1
    if cmp.boundary is not None:
        bb, bt = cmp.boundary.bootstrap[j], cmp.boundary.tests[j]
        rows.append(_Row("mboundary_iou", "mBoundaryIoU", float(cmp.boundary.miou[0]), float(cmp.boundary.miou[r]),
                         None if bb is None else bb.miou, None if bt is None else bt.miou,
                         0 if bt is None else bt.assignments, cmp.boundary.worse(j, cmp.alpha), False))
    if cmp.surface is not None:
        sp, worse = cmp.surface.p[j], cmp.surface.worse(j, cmp.alpha)
        for m, (key, label, lower) in enumerate(SURFACE_METRICS):
            rows.append(_Row(key, label + (" (lower is better)" if lower else ""), float(cmp.surface.summary[0, m]),
                             float(cmp.surface.summary[r, m]), None, None if sp is None else float(sp[m]),
                             cmp.surface.assignments, bool(worse[m]), lower))
    return rows


def _extra_footer(cmp: Comparison) -> str:
    parts = []
    if cmp.boundary is not None:
        parts.append("mBoundaryIoU and boundary IoU: the same interval and test on the boundary bands' counts "
                     "(class p Holm-adjusted)")
    if cmp.surface is not None:
        how = ("no p (--permutations 0)" if not cmp.surface.method else
               f"p from a paired randomization test of the per-image values ({cmp.surface.method}, "
               f"{cmp.surface.assignments:,} assignments), one-sided: small p = NEW worse (higher mHD95 or mASSD, "
               "lower mNSD)")
        parts.append("mHD95, mASSD, mNSD: per class the mean over the images where the class is on either side, "
                     f"then over classes; no interval; {how}")
    return "; ".join(parts)


def _boundary_class_table(cmp: Comparison) -> Table | None:
    """Two runs: per-class boundary IoU (BASE, NEW, Δ, CI, p Holm) and surface differences."""
    bd, sf = cmp.boundary, cmp.surface
    if bd is None and sf is None:
        return None
    columns: list[tuple[str, str]] = [("id", "right"), ("class", "left")]
    if bd is not None:
        columns += [("BIoU BASE", "right"), ("BIoU NEW", "right"), ("Δ BIoU", "right")]
        if bd.bootstrap[0] is not None:
            columns.append((f"{level(cmp.alpha)} CI", "right"))
        if bd.tests[0] is not None:
            columns.append(("p Holm", "right"))
    if sf is not None:
        columns += [(f"Δ {label[1:]}", "right") for _, label, _ in SURFACE_METRICS]
    rows: list[tuple[list[Any], bool]] = []
    for c in _class_order(cmp):
        row: list[Any] = [Text(str(c), style="dim"), cmp.class_names[c]]
        if bd is not None:
            d = float(bd.iou[1, c] - bd.iou[0, c])
            worse = bool(bd.class_worse(0, cmp.alpha)[c])
            row += [fmt(bd.iou[0, c]), fmt(bd.iou[1, c]),
                    Text(fmt(d, sign=True) + (" !" if worse else ""), style=_diff_style(d, worse))]
            boot, test = bd.bootstrap[0], bd.tests[0]
            if boot is not None:
                row.append(_ci_cell(boot.classes[c]))
            if test is not None:
                row.append(fmt_p(float(test.class_holm()[c]), test.assignments))
        if sf is not None:
            for m, (_, _, lower) in enumerate(SURFACE_METRICS):
                d = float(sf.values[1, m, c] - sf.values[0, m, c])
                row.append(Text(fmt(d, digits=2 if lower else 4, sign=True), style=_diff_style(-d if lower else d)))
        rows.append((row, False))
    title = "boundary and surface per class" + ("" if sf is None else " (Δ HD95, Δ ASSD: lower is better)")
    return _fill(Table(title=title, title_justify="left", box=box.SIMPLE_HEAD), columns, rows)


def _two_run_tables(cmp: Comparison, title: str) -> Group:
    boot, test = cmp.bootstrap[0], cmp.test(0)
    ci = [(f"{level(cmp.alpha)} CI", "right")] if boot is not None else []
    ps = [("p", "right"), ("p Holm", "right")] if test is not None else []
    diff = cmp.class_diff[0]
    worse_classes = cmp.significantly_worse(0)
    holm_p = cmp.class_p_holm(0)
    rows: list[tuple[list[Any], bool]] = []
    for c in _class_order(cmp):
        worse = bool(worse_classes[c])
        row: list[Any] = [Text(str(c), style="dim"), cmp.class_names[c], fmt(cmp.iou[0, c]), fmt(cmp.iou[1, c]),
                          Text(fmt(diff[c], sign=True) + (" !" if worse else ""), style=_diff_style(diff[c], worse))]
        if boot is not None:
            row.append(_ci_cell(boot.classes[c]))
        if test is not None:
            row += [fmt_p(float(test.classes[c]), test.assignments), fmt_p(float(holm_p[c]), test.assignments)]
        rows.append((row, False))
    t = _fill(Table(title=title, title_justify="left", box=box.SIMPLE_HEAD),
              [("id", "right"), ("class", "left"), ("BASE", "right"), ("NEW", "right"),
               ("Δ IoU", "right"), *ci, *ps], rows)

    rows = []
    for name, label in SUMMARY_METRICS.items():
        v = cmp.summary[name]
        d = float(v[1] - v[0])
        worse = cmp.summary_worse(0, name)
        row = [Text(label, style="bold"), fmt(v[0]), fmt(v[1]),
               Text(fmt(d, sign=True) + (" !" if worse else ""), style=_diff_style(d, worse))]
        if boot is not None:
            row.append(_ci_cell(boot.summary(name)))
        if test is not None:
            row.append(fmt_p(test.summary(name), test.assignments))
        rows.append((row, False))
    for x in _extra_rows(cmp, 0):
        row = [Text(x.label, style="bold"), fmt(x.base), fmt(x.new),
               Text(fmt(x.diff, sign=True) + (" !" if x.worse else ""), style=_diff_style(x.style_diff, x.worse))]
        if boot is not None:
            row.append(_ci_cell(x.interval))
        if test is not None:
            row.append(fmt_p(x.p, x.assignments))
        rows.append((row, False))
    s = _fill(Table(box=None, header_style="bold", pad_edge=False),
              [("metric", "left"), ("BASE", "right"), ("NEW", "right"), ("Δ", "right"), *ci, *ps[:1]], rows)
    extra = _boundary_class_table(cmp)
    return Group(t, s) if extra is None else Group(t, s, extra)


def _vs_line(cmp: Comparison, j: int) -> str:
    """``Δ mIoU -0.0123, 95% CI [-0.02, -0.004], p = 0.0156`` for later run j (what is available)."""
    boot, test = cmp.bootstrap[j], cmp.test(j)
    d = float(cmp.summary_diff("miou")[j])
    text = f"Δ mIoU {fmt(d, sign=True)}"
    if boot is not None:
        text += f", {level(boot.alpha)} CI {_ci_cell(boot.miou)}"
    if test is not None:
        text += f", {p_phrase(test.miou, test.assignments)}"
    for x in _extra_rows(cmp, j):
        if x.key != "mboundary_iou":
            continue
        text += f"; Δ mBoundaryIoU {fmt(x.diff, sign=True)}"
        if x.interval is not None:
            text += f", CI {_ci_cell(x.interval)}"
        if x.p is not None:
            text += f", {p_phrase(x.p, x.assignments)}"
    return text


def _extra_values(cmp: Comparison) -> list[tuple[str, F, bool]]:
    """(label, value of each run, lower is better) of the boundary and surface summaries."""
    out = []
    if cmp.boundary is not None:
        out.append(("mBoundaryIoU", cmp.boundary.miou, False))
    if cmp.surface is not None:
        out += [(label + (" (lower is better)" if lower else ""), cmp.surface.summary[:, m], lower)
                for m, (_, label, lower) in enumerate(SURFACE_METRICS)]
    return out


def _multi_cells(cmp: Comparison, values: F, lower_better: bool = False) -> list[Text]:
    best = _best(-values if lower_better else values)
    return [Text(fmt(values[r]) + (" *" if best[r] else "  "), style="bold green" if best[r] else "")
            for r in range(cmp.n_runs)]


def _multi_run_tables(cmp: Comparison, title: str) -> Group:
    order = _class_order(cmp)
    rows: list[tuple[list[Any], bool]] = [
        ([Text(str(c), style="dim"), cmp.class_names[c], *_multi_cells(cmp, cmp.iou[:, c])], c == order[-1])
        for c in order
    ]
    rows += [(["", Text(label, style="bold"), *_multi_cells(cmp, cmp.summary[name])], False)
             for name, label in SUMMARY_METRICS.items()]
    rows += [(["", Text(label, style="bold"), *_multi_cells(cmp, values, lower)], False)
             for label, values, lower in _extra_values(cmp)]
    columns = [("id", "right"), ("class", "left"), *[(head, "right") for head in _short_heads(cmp)]]
    parts: list[Any] = [_fill(Table(title=title, title_justify="left", box=box.SIMPLE_HEAD), columns, rows),
                        Text("* best in the row; classes by their largest drop from BASE first", style="dim")]
    for j in range(cmp.n_runs - 1):
        if cmp.bootstrap[j] is None and cmp.test(j) is None:
            continue
        d = float(cmp.summary_diff("miou")[j])
        worse = cmp.summary_worse(j, "miou")
        parts.append(Text(f"NEW {j + 1} vs BASE: {_vs_line(cmp, j)}" + (" (significant drop)" if worse else ""),
                          style=_diff_style(d, worse)))
    return Group(*parts)


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|")


def comparison_markdown(cmp: Comparison, gates: Sequence[GateResult] = ()) -> str:
    """A GitHub-flavoured Markdown report (tables and gate results) for a pull-request comment."""
    labels = [f"`{_md_escape(label)}`" for label in cmp.labels]
    lines = [f"### segeval compare: {cmp.n_images} images, {cmp.n_classes} classes, baseline {labels[0]}", ""]
    if cmp.n_runs == 2:
        boot, test = cmp.bootstrap[0], cmp.test(0)
        worse_classes, holm_p = cmp.significantly_worse(0), cmp.class_p_holm(0)
        head = (f" | {level(cmp.alpha)} CI of Δ" if boot is not None else "") + (" | p" if test is not None else "")
        rule = (" | :--:" if boot is not None else "") + (" | --:" if test is not None else "")

        def row(name: str, b: float, n: float, iv: Interval | None, p: float, worse: bool, extra: str = "",
                bold: bool = False) -> str:
            d = n - b
            arrow = " 🔻" if worse else (" ▼" if d < 0 else (" ▲" if d > 0 else ""))
            name = f"**{name}**" if bold else name
            cells = f"| {name} | {fmt(b)} | {fmt(n)} | {fmt(d, sign=True)}{arrow}"
            if boot is not None:
                cells += f" | {_ci_cell(iv)}"
            if test is not None:
                cells += f" | {fmt_p(p, test.assignments)}{extra}"
            return cells + " |"

        lines += [f"| metric | {labels[0]} | {labels[1]} | Δ{head} |", f"| --- | --: | --: | --:{rule} |"]
        for name, label in SUMMARY_METRICS.items():
            lines.append(row(label, cmp.summary[name][0], cmp.summary[name][1],
                             boot.summary(name) if boot is not None else None,
                             test.summary(name) if test is not None else math.nan, cmp.summary_worse(0, name),
                             bold=True))
        for x in _extra_rows(cmp, 0):
            sd = x.style_diff
            arrow = " 🔻" if x.worse else (" ▼" if sd < 0 else (" ▲" if sd > 0 else ""))
            text = f"| **{x.label}** | {fmt(x.base)} | {fmt(x.new)} | {fmt(x.diff, sign=True)}{arrow}"
            if boot is not None:
                text += f" | {_ci_cell(x.interval)}"
            if test is not None:
                text += f" | {fmt_p(x.p, x.assignments)}"
            lines.append(text + " |")
        holm_head = " | p Holm" if test is not None else ""
        lines += ["", "<details><summary>Per-class IoU, largest drop first</summary>", "",
                  f"| id | class | {labels[0]} | {labels[1]} | Δ IoU{head}{holm_head} |",
                  f"| --: | --- | --: | --: | --:{rule}{' | --:' if test is not None else ''} |"]
        for c in _class_order(cmp):
            extra = f" | {fmt_p(float(holm_p[c]), test.assignments)}" if test is not None else ""
            lines.append(f"| {c} " + row(_md_escape(cmp.class_names[c]), cmp.iou[0, c], cmp.iou[1, c],
                                         boot.classes[c] if boot is not None else None,
                                         float(test.classes[c]) if test is not None else math.nan,
                                         bool(worse_classes[c]), extra))
        lines += ["", "</details>"]
        lines += _markdown_boundary_classes(cmp)
    else:
        head = " | ".join(labels[:1] + [f"{lab} (Δ)" for lab in labels[1:]])
        lines += [f"| id | class | {head} |", "| --: | --- |" + " --: |" * cmp.n_runs]

        def cells(values: F, diffs: F) -> str:
            best = _best(values)
            out = []
            for r in range(cmp.n_runs):
                text = fmt(values[r]) + ("" if r == 0 else f" ({fmt(diffs[r - 1], sign=True)})")
                out.append(f"**{text}**" if best[r] else text)
            return " | ".join(out)

        for name, label in SUMMARY_METRICS.items():
            lines.append(f"|  | **{label}** | {cells(cmp.summary[name], cmp.summary_diff(name))} |")
        for label, values, lower in _extra_values(cmp):
            best = _best(-values if lower else values)
            out = [(fmt(values[r]) + ("" if r == 0 else f" ({fmt(values[r] - values[0], sign=True)})"))
                   for r in range(cmp.n_runs)]
            lines.append(f"|  | **{label}** | " + " | ".join(f"**{t}**" if best[r] else t for r, t in enumerate(out))
                         + " |")
        for c in _class_order(cmp):
            lines.append(f"| {c} | {_md_escape(cmp.class_names[c])} | {cells(cmp.iou[:, c], cmp.class_diff[:, c])} |")
        lines += ["", "**bold**: best in the row."]
        for j in range(cmp.n_runs - 1):
            if cmp.bootstrap[j] is not None or cmp.test(j) is not None:
                lines.append(f"- {labels[j + 1]} vs {labels[0]}: {_vs_line(cmp, j)}")
    extra_footer = f"; {_extra_footer(cmp)}" if _extra_footer(cmp) else ""
    lines += ["", f"<sub>{_md_escape(_footer(cmp, '🔻') + extra_footer)}</sub>"]
    lines += [f"> note: {_md_escape(note)}" for note in cmp.notes]
    if gates:
        lines += ["", "**Gates**", ""]
        lines += [f"- {'✅' if g.passed else '❌'} {_md_escape(g.message)}" for g in gates]
    return "\n".join(lines) + "\n"


def _markdown_boundary_classes(cmp: Comparison) -> list[str]:
    """Two runs: a folded per-class table of boundary IoU and the surface differences."""
    bd, sf = cmp.boundary, cmp.surface
    if bd is None and sf is None:
        return []
    head, rule = "| id | class", "| --: | ---"
    if bd is not None:
        head += " | BIoU BASE | BIoU NEW | Δ BIoU"
        rule += " | --: | --: | --:"
        if bd.bootstrap[0] is not None:
            head += f" | {level(cmp.alpha)} CI of Δ"
            rule += " | :--:"
        if bd.tests[0] is not None:
            head += " | p Holm"
            rule += " | --:"
    if sf is not None:
        head += "".join(f" | Δ {label[1:]}" for _, label, _ in SURFACE_METRICS)
        rule += " | --:" * len(SURFACE_METRICS)
    lines = ["", "<details><summary>Per-class boundary IoU and surface distances (Δ HD95, Δ ASSD: lower is "
             "better)</summary>", "", head + " |", rule + " |"]
    for c in _class_order(cmp):
        line = f"| {c} | {_md_escape(cmp.class_names[c])}"
        if bd is not None:
            d = float(bd.iou[1, c] - bd.iou[0, c])
            worse = bool(bd.class_worse(0, cmp.alpha)[c])
            arrow = " 🔻" if worse else (" ▼" if d < 0 else (" ▲" if d > 0 else ""))
            line += f" | {fmt(bd.iou[0, c])} | {fmt(bd.iou[1, c])} | {fmt(d, sign=True)}{arrow}"
            boot, test = bd.bootstrap[0], bd.tests[0]
            if boot is not None:
                line += f" | {_ci_cell(boot.classes[c])}"
            if test is not None:
                line += f" | {fmt_p(float(test.class_holm()[c]), test.assignments)}"
        if sf is not None:
            line += "".join(f" | {fmt(float(sf.values[1, m, c] - sf.values[0, m, c]), sign=True)}"
                            for m in range(len(SURFACE_METRICS)))
        lines.append(line + " |")
    return lines + ["", "</details>"]


def _interval_dict(iv: Interval | None, p: float | None) -> dict[str, float | None]:
    return {"low": None if iv is None else none_if_nan(iv.low), "high": None if iv is None else none_if_nan(iv.high),
            "p": None if p is None else none_if_nan(p)}


def _test_dict(test: RandomizationResult | None, family: int) -> dict[str, Any] | None:
    if test is None:
        return None
    return {"name": "paired randomization test", "method": test.method, "assignments": test.assignments,
            "seed": test.seed, "images": test.n_images, "smallest_p": test.smallest_p, "sided": "one (NEW worse)",
            "class_correction": "holm", "class_family": family, "description": test.method_text()}


def _extra_dict(cmp: Comparison, j: int) -> dict[str, Any]:
    """Later run ``j``'s boundary and surface entries: ``extra_summary`` and ``boundary_classes``."""
    if cmp.boundary is None and cmp.surface is None:
        return {}
    out: dict[str, Any] = {"extra_summary": {
        x.key: {"base": none_if_nan(x.base), "new": none_if_nan(x.new), "diff": none_if_nan(x.diff),
                "better": "lower" if x.lower_better else "higher",
                **_interval_dict(x.interval, x.p), "significantly_worse": x.worse}
        for x in _extra_rows(cmp, j)}}
    bd, r = cmp.boundary, j + 1
    if bd is not None:
        boot, test = bd.bootstrap[j], bd.tests[j]
        holm_p = test.class_holm() if test is not None else None
        worse = bd.class_worse(j, cmp.alpha)
        out["boundary_classes"] = [
            {"id": c, "name": cmp.class_names[c], "base": none_if_nan(bd.iou[0, c]), "new": none_if_nan(bd.iou[r, c]),
             "diff": none_if_nan(bd.iou[r, c] - bd.iou[0, c]),
             **_interval_dict(boot.classes[c] if boot is not None else None,
                              float(test.classes[c]) if test is not None else None),
             "p_holm": None if holm_p is None else none_if_nan(float(holm_p[c])), "significantly_worse": bool(worse[c])}
            for c in range(cmp.n_classes)]
    sf = cmp.surface
    if sf is not None:
        out["surface_classes"] = [
            {"id": c, "name": cmp.class_names[c],
             **{key[1:]: {"base": none_if_nan(sf.values[0, m, c]), "new": none_if_nan(sf.values[r, m, c]),
                          "diff": none_if_nan(sf.values[r, m, c] - sf.values[0, m, c])}
                for m, (key, _, _) in enumerate(SURFACE_METRICS)}}
            for c in range(cmp.n_classes)]
    return out


def comparison_dict(cmp: Comparison, gates: Sequence[GateResult] = ()) -> dict[str, Any]:
    """The comparison as a JSON-ready object (``--format json``); undefined values are ``null``."""
    runs = [{"label": label, **{name: none_if_nan(float(cmp.summary[name][r])) for name in SUMMARY_METRICS}}
            for r, label in enumerate(cmp.labels)]
    for r, entry in enumerate(runs):
        if cmp.boundary is not None:
            entry["mboundary_iou"] = none_if_nan(float(cmp.boundary.miou[r]))
        if cmp.surface is not None:
            entry.update({key: none_if_nan(float(cmp.surface.summary[r, m]))
                          for m, (key, _, _) in enumerate(SURFACE_METRICS)})
    comparisons = []
    for j, boot in enumerate(cmp.bootstrap):
        r = j + 1
        test = cmp.test(j)
        worse = cmp.significantly_worse(j)
        holm_p = cmp.class_p_holm(j)
        comparisons.append({
            "base": cmp.labels[0],
            "new": cmp.labels[r],
            "summary": {
                name: {"base": none_if_nan(float(cmp.summary[name][0])),
                       "new": none_if_nan(float(cmp.summary[name][r])),
                       "diff": none_if_nan(float(cmp.summary[name][r] - cmp.summary[name][0])),
                       **_interval_dict(boot.summary(name) if boot is not None else None,
                                        test.summary(name) if test is not None else None),
                       "significantly_worse": cmp.summary_worse(j, name)}
                for name in SUMMARY_METRICS
            },
            "classes": [
                {"id": c, "name": cmp.class_names[c], "base": none_if_nan(cmp.iou[0, c]),
                 "new": none_if_nan(cmp.iou[r, c]),
                 "diff": none_if_nan(cmp.iou[r, c] - cmp.iou[0, c]),
                 **_interval_dict(boot.classes[c] if boot is not None else None,
                                  float(test.classes[c]) if test is not None else None),
                 "p_holm": None if test is None else none_if_nan(float(holm_p[c])),
                 "significantly_worse": bool(worse[c])}
                for c in range(cmp.n_classes)
            ],
            **_extra_dict(cmp, j),
            "bootstrap": None if boot is None else {"resamples": boot.n, "seed": boot.seed, "alpha": boot.alpha,
                                                    "level": boot.level, "images": boot.n_images,
                                                    "interval": "percentile"},
            "test": _test_dict(test, _family(cmp, j)),
        })
    failed = [g for g in gates if not g.passed]
    return {
        "format": COMPARE_FORMAT,
        "baseline": cmp.labels[0],
        "n_images": cmp.n_images,
        "alpha": cmp.alpha,
        "runs": runs,
        "classes": [{"id": c, "name": cmp.class_names[c], "iou": [none_if_nan(v) for v in cmp.iou[:, c]]}
                    for c in range(cmp.n_classes)],
        "comparisons": comparisons,
        "notes": list(cmp.notes),
        "conventions": ("diff = NEW - BASE (negative: NEW is worse); metrics are data-set level "
                        "(sum over images of tp, fp, fn per class, then IoU, then the mean over defined classes); "
                        f"low/high: two-sided {level(cmp.alpha)} paired-bootstrap percentile interval of diff; "
                        f"p: paired randomization test (see test), {P_DEFINITION}; p_holm: class p-values "
                        "Holm-adjusted over the classes with a defined difference; significantly_worse: diff < 0 "
                        "and p (classes: p_holm) < alpha; boundary_classes and mboundary_iou: the same on the "
                        "boundary bands' counts; mhd95, massd, mnsd (better: lower or higher): per class the mean "
                        "over the images where the class is on either side, then over classes, p from a paired "
                        "randomization test of the per-image values, one-sided (small p: NEW worse), no interval"),
        "gates": [{"gate": g.gate, "run": g.run, "threshold": g.threshold, "value": none_if_nan(g.value),
                   "p": None if g.p is None else none_if_nan(g.p), "passed": g.passed, "classes": list(g.classes),
                   "message": g.message} for g in gates],
        "failed": [g.gate for g in failed],
        "passed": not failed,
    }
