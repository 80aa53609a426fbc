"""Tests of segeval.presenting.compare_table: the table, Markdown and JSON of a comparison.

The comparisons are built by hand (numbers chosen here, no statistics run), so each expected cell is
written out from those numbers.
"""

from __future__ import annotations

import json
import math
from io import StringIO

import numpy as np
from rich.console import Console

from segeval.comparing.compare import Comparison, GateResult
from segeval.presenting.compare_table import comparison_dict, comparison_markdown, comparison_table

NAN = math.nan


def two_runs() -> Comparison:
    """BASE and NEW on 5 images, 4 classes: 'a|b' falls, 'car' rises, 'sky' is only predicted by NEW,
    'bus' is absent from both. No bootstrap, no randomization test."""
    iou = np.array([[0.50, 0.40, NAN, NAN], [0.25, 0.45, 0.0, NAN]])
    return Comparison(
        labels=("base.json", "new.json"), class_names=("a|b", "car", "sky", "bus"),
        image_names=tuple(f"img{i}" for i in range(5)), iou=iou,
        summary={"miou": np.array([0.45, 0.2333]), "mdice": np.array([0.6, 0.5]),
                 "pixel_accuracy": np.array([0.9, 0.8])},
        bootstrap=(None,), tests=(None,), notes=("surface distances not compared: only new.json has them",))


def text(renderable: object) -> str:
    buf = StringIO()
    Console(file=buf, width=160, color_system=None).print(renderable)
    return buf.getvalue()


def test_markdown_rows_order_escaping_and_undefined_cells():
    md = comparison_markdown(two_runs(), [GateResult("min-miou", "new.json", 0.3, 0.2333, False, "gate x | failed")])
    assert md.startswith("### segeval compare: 5 images, 4 classes, baseline `base.json`\n")
    assert "| metric | `base.json` | `new.json` | Δ |\n| --- | --: | --: | --: |" in md  # no CI, no p column
    assert "| **mIoU** | 0.4500 | 0.2333 | -0.2167 ▼ |" in md
    rows = [line for line in md.splitlines() if line.startswith("| ") and line[2].isdigit()]
    # largest drop first, the rise next, undefined differences last in id order; '|' escaped
    assert rows == ["| 0 | a\\|b | 0.5000 | 0.2500 | -0.2500 ▼ |", "| 1 | car | 0.4000 | 0.4500 | +0.0500 ▲ |",
                    "| 2 | sky | — | 0.0000 | — |", "| 3 | bus | — | — | — |"]
    assert "no bootstrap (--bootstrap 0): no intervals; no randomization test (--permutations 0): no p-values" in md
    assert "> note: surface distances not compared: only new.json has them" in md
    assert md.endswith("**Gates**\n\n- ❌ gate x \\| failed\n")


def test_json_writes_undefined_values_as_null_and_lists_failed_gates():
    gates = [GateResult("min-miou", "new.json", 0.3, 0.2333, False, "m"),
             GateResult("max-drop", "new.json", 0.5, NAN, True, "d", p=NAN)]
    d = comparison_dict(two_runs(), gates)
    json.dumps(d, allow_nan=False)  # no NaN anywhere
    assert d["format"] == "segeval-compare/2" and d["baseline"] == "base.json" and d["n_images"] == 5
    assert [c["iou"] for c in d["classes"]] == [[0.5, 0.25], [0.4, 0.45], [None, 0.0], [None, None]]
    cmp = d["comparisons"][0]
    assert cmp["bootstrap"] is None and cmp["test"] is None
    assert cmp["classes"][2] == {"id": 2, "name": "sky", "base": None, "new": 0.0, "diff": None, "low": None,
                                 "high": None, "p": None, "p_holm": None, "significantly_worse": False}
    assert cmp["summary"]["miou"]["diff"] == 0.2333 - 0.45
    assert d["gates"][1]["value"] is None and d["gates"][1]["p"] is None
    assert d["failed"] == ["min-miou"] and d["passed"] is False


def test_table_lists_classes_by_drop_with_dashes_and_footers():
    out = text(comparison_table(two_runs()))
    assert "segeval compare: 5 images, 4 classes; BASE = base.json, NEW = new.json" in " ".join(out.split())
    lines = out.splitlines()
    order = [next(i for i, line in enumerate(lines) if f" {name} " in line) for name in ("a|b", "car", "sky", "bus")]
    assert order == sorted(order)
    assert any(line.split() == ["0", "a|b", "0.5000", "0.2500", "-0.2500"] for line in lines)
    assert any(line.split() == ["3", "bus", "—", "—", "—"] for line in lines)
    assert "no bootstrap (--bootstrap 0): no intervals" in out
    assert "note: surface distances not compared" in out


def test_three_runs_mark_the_best_unless_all_tie():
    iou = np.array([[0.5, 0.3], [0.6, 0.3], [0.4, 0.3]])
    cmp = Comparison(labels=("a", "b", "c"), class_names=("road", "car"), image_names=("i",), iou=iou,
                     summary={k: np.array([0.4, 0.45, 0.35]) for k in ("miou", "mdice", "pixel_accuracy")},
                     bootstrap=(None, None), tests=(None, None))
    md = comparison_markdown(cmp)
    assert "| 0 | road | 0.5000 | **0.6000 (+0.1000)** | 0.4000 (-0.1000) |" in md
    assert "| 1 | car | 0.3000 | 0.3000 (+0.0000) | 0.3000 (+0.0000) |" in md  # a tie: none marked
    out = text(comparison_table(cmp))
    road = next(line for line in out.splitlines() if " road " in line)
    assert road.split()[2:] == ["0.5000", "0.6000", "*", "0.4000"]
