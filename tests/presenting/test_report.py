"""segeval report: the files the page links, the panels' pixels, --run without re-scoring, and the
page in a real browser (headless Chromium)."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from conftest import FIXTURES
from PIL import Image
from reference import bincount_cm
from typer.testing import CliRunner

import segeval
import segeval.reading.io
import segeval.scoring.evaluate
import segeval.scoring.maps
from segeval.cli import app
from segeval.presenting import report as rep

runner = CliRunner()
CLASSES = str(FIXTURES / "classes.json")
CHROMIUM = Path("/usr/bin/chromium")
PLOT_NAMES = ["plots/class_iou.png", "plots/confusion.png", "plots/image_miou.png"]


class _Links(HTMLParser):
    """Every <img src> (with its width and height), <a href>, and the files the page's controls switch to:
    the viewer layers (data-src-*), the class menus (<option value>) and the plot pages (data-src)."""

    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[dict[str, str | None]] = []
        self.hrefs: list[str] = []
        self.switched: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        elif tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])
        self.switched += [v for k, v in a.items()
                          if v and (k.startswith("data-src") or (tag == "option" and k == "value"))]


def parse(index: Path) -> _Links:
    p = _Links()
    p.feed(index.read_text(encoding="utf-8"))
    return p


def check_links(out: Path) -> _Links:
    """Every linked file exists under out, relative, and every image is a PNG of its stated size; every
    image a control switches to is a PNG too."""
    links = parse(out / "index.html")
    assert links.imgs
    for href in links.hrefs:
        if href.startswith("#"):
            assert f'id="{href[1:]}"' in (out / "index.html").read_text(encoding="utf-8"), href
            continue
        assert not re.match(r"^[a-z]+:", href), href
        assert (out / unquote(href)).is_file(), href
    for img in links.imgs:
        src = img["src"]
        assert src and not src.startswith(("/", "http:", "https:", "file:")), src
        path = out / unquote(src)
        assert path.is_file(), src
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            assert im.format == "PNG", src
            assert im.size == (int(img["width"]), int(img["height"])), src
    for src in links.switched:
        assert not src.startswith(("/", "http:", "https:", "file:")), src
        with Image.open(out / unquote(src)) as im:
            assert im.format == "PNG", src
            im.load()
    return links


def section(page: str, anchor: str) -> str:
    m = re.search(rf'<section id="{anchor}">(.*?)</section>', page, re.S)
    assert m, anchor
    return m.group(1)


def table_rows(html_text: str) -> list[list[str]]:
    """The body rows of the first table in html_text, each cell's text (tags dropped)."""
    body = re.search(r"<tbody>(.*?)</tbody>", html_text, re.S)
    assert body
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)]


def reference_image_iou() -> tuple[list[str], np.ndarray, np.ndarray]:
    """Image names, per-image per-class IoU (N, 6; NaN where undefined) and the summed (6, 7) counts of the demo
    masks, read with Pillow and counted with np.bincount."""
    names = sorted(p.stem for p in (FIXTURES / "gt").glob("*.png"))
    cms = [bincount_cm(np.asarray(Image.open(FIXTURES / "gt" / f"{n}.png")),
                       np.asarray(Image.open(FIXTURES / "pred" / f"{n}.png")), 6, 255) for n in names]
    ious = []
    for cm in cms:
        tp = np.diag(cm[:, :6]).astype(float)
        union = cm.sum(1) + cm[:, :6].sum(0) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            ious.append(np.where(union > 0, tp / union, np.nan))
    return names, np.array(ious), sum(cms)


def make_images(tmp_path: Path) -> Path:
    """Input photos for the demo masks (Cityscapes-style suffix), plus a file that is not an image."""
    d = tmp_path / "images"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        a = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)
        ext = ".jpg" if i % 2 else ".png"
        Image.fromarray(a).save(d / f"street_{i}_leftImg8bit{ext}")
    (d / "README.txt").write_text("not an image")
    return d


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    out = tmp / "report"
    r = runner.invoke(app, ["report", str(FIXTURES / "pred"), str(FIXTURES / "gt"), "-c", CLASSES, "--out", str(out),
                            "--images", str(make_images(tmp)), "--image-suffix", "_leftImg8bit", "--worst", "3"])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(out / "index.html")
    return out


def test_report_links_exist_and_are_pngs_of_their_size(built):
    links = check_links(built)
    srcs = [i["src"] for i in links.imgs]
    assert srcs[:3] == PLOT_NAMES
    # 3 worst images, each a viewer: the input image under one switchable layer; the demo masks are 96 x 64,
    # drawn at three times their size
    panels = [i for i in links.imgs if i["src"].startswith("worst/")]
    assert len(panels) == 6
    assert all((i["width"], i["height"]) == ("288", "192") for i in panels)
    assert [s.rsplit("_", 1)[1] for s in srcs[3:5]] == ["image.png", "errors.png"]
    # the layers: errors (the first shown), ground truth, prediction; one TP/FP/FN layer per class in the image
    first = srcs[3].rsplit("_", 1)[0]
    assert {f"{first}_{k}.png" for k in ("errors", "gt", "pred")} <= set(links.switched)
    assert {f"{first}_c{c}.png" for c in range(5)} <= set(links.switched)  # bus (5) is in no image
    assert not any(s.endswith("_c5.png") for s in links.switched)
    assert (built / "plots" / "confusion.csv").is_file()


def test_tables(built):
    """The summary and per-class tables hold the reference numbers, absent classes marked, every column sortable."""
    page = (built / "index.html").read_text(encoding="utf-8")
    _, _, total = reference_image_iou()
    tp = np.diag(total[:, :6]).astype(float)
    fp = total[:, :6].sum(0) - tp
    fn = total.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / (tp + fp + fn)
    rows = table_rows(section(page, "classes"))
    assert [r[1].split()[0] for r in rows] == ["background", "road", "building", "vegetation", "car", "bus"]
    assert rows[5][1] == "bus absent" and rows[5][2] == "—"
    for c in range(5):
        assert rows[c][2] == f"{iou[c]:.4f}"
        assert [int(x.replace(",", "")) for x in rows[c][7:10]] == [tp[c], fp[c], fn[c]]
    classes = section(page, "classes")
    # every column sortable; all but the class name by number
    assert len(re.findall(r"<th[ >]", classes)) == 11 and classes.count('data-type="num"') == 10
    # the value sorted by is the number itself; undefined values sort last (empty)
    assert f'data-v="{float(iou[0])!r}"' in classes and 'data-v=""' in classes
    summary = table_rows(section(page, "summary"))
    assert summary[0][:2] == ["mIoU (data set)", f"{np.mean(iou[:5]):.4f}"]


def test_report_content(built):
    page = (built / "index.html").read_text(encoding="utf-8")
    names, image_iou, total = reference_image_iou()
    tp = np.diag(total[:, :6]).astype(float)
    miou = np.mean(tp[:5] / (total.sum(1) + total[:, :6].sum(0) - tp)[:5])  # bus (5) is absent: left out
    baseline = total[0].sum() / total.sum() / 5  # always class 0: its IoU is its share, the 4 others 0
    assert (f"{miou:.4f}", f"{baseline:.4f}") == ("0.7491", "0.0703")
    for text in ("mIoU (data set)", "baseline mIoU", "always predicting class 0", "0.7491", "0.0703",
                 "Worst 3 images by image mIoU", "Legend", "Settings", "ignore index 255", "street_1"):
        assert text in page, text
    worst = [names[i] for i in np.argsort(np.nanmean(image_iou, axis=1))[:3]]
    assert re.findall(r"<div class=\"vtitle\">\d\. (\w+)</div>", page) == worst
    for name in ("background", "road", "building", "vegetation", "car", "bus"):
        assert name in page


def test_overlay_and_panel_pixels(built):
    """The panels hold the class colours and the error colours exactly where the masks say."""
    run = segeval.score(FIXTURES / "pred", FIXTURES / "gt", classes=CLASSES)
    name = run.image_names[int(np.nanargmin(run.image_miou))]
    gt = np.asarray(Image.open(FIXTURES / "gt" / f"{name}.png"))
    pred = np.asarray(Image.open(FIXTURES / "pred" / f"{name}.png"))
    colors = np.asarray(run.classes.colors, np.uint8)
    gt_panel = np.asarray(Image.open(built / "worst" / f"001_{name}_gt.png"))
    errors = np.asarray(Image.open(built / "worst" / f"001_{name}_errors.png").convert("RGBA"))
    up = lambda a: np.repeat(np.repeat(a, 3, 0), 3, 1)  # noqa: E731 - panels are drawn at 3x
    valid = up(gt != 255)
    np.testing.assert_array_equal(gt_panel[valid], colors[up(gt)[valid]])
    assert (gt_panel[~valid] == 255).all()
    wrong = up((gt != 255) & (pred != 255) & (gt != pred))
    missed = up((gt != 255) & (pred == 255))
    assert wrong.any() and missed.any()
    assert errors.shape[-1] == 4  # a transparent layer over the input image
    assert (errors[wrong] == (*rep.FP_COLOR, 255)).all() and (errors[missed] == (*rep.FN_COLOR, 255)).all()
    right = up((gt != 255) & (gt == pred))
    assert (errors[right] == (0, 0, 0, rep.SHADE_ALPHA)).all()
    assert (errors[~valid] == (0, 0, 0, rep.IGNORED_ALPHA)).all()
    # one class's layer: car (4), TP / FP / FN where the masks say
    car = np.asarray(Image.open(built / "worst" / f"001_{name}_c4.png").convert("RGBA"))
    g, p = up(gt), up(pred)
    for where, rgb in (((g == 4) & (p == 4), rep.TP_COLOR), ((g != 4) & (g != 255) & (p == 4), rep.FP_COLOR),
                       ((g == 4) & (p != 4), rep.FN_COLOR)):
        assert where.any()
        assert (car[where] == (*rgb, 255)).all()
    neither = (g != 4) & (g != 255) & (p != 4)
    assert (car[neither] == (0, 0, 0, rep.SHADE_ALPHA)).all()


def test_error_overlay_one_class():
    codes = np.array([[0, 1], [2, 3], [255, 0]], np.uint8)
    base = np.full((3, 2, 3), 200, np.uint8)
    out = rep.error_overlay(codes, base, one_class=True)
    assert tuple(out[0, 1]) == rep.TP_COLOR and tuple(out[1, 0]) == rep.FP_COLOR and tuple(out[1, 1]) == rep.FN_COLOR
    assert out[0, 0, 0] == out[0, 0, 1] == out[0, 0, 2] and out[2, 0, 0] < out[0, 0, 0] < 130
    layer = rep.error_layer(codes, one_class=True)
    assert [tuple(v) for v in layer.reshape(-1, 4)] == [
        (0, 0, 0, rep.SHADE_ALPHA), (*rep.TP_COLOR, 255), (*rep.FP_COLOR, 255), (*rep.FN_COLOR, 255),
        (0, 0, 0, rep.IGNORED_ALPHA), (0, 0, 0, rep.SHADE_ALPHA)]
    all_classes = rep.error_layer(np.array([[1, 2, 3, 255]], np.uint8), one_class=False)
    assert [tuple(v) for v in all_classes[0]] == [(0, 0, 0, rep.SHADE_ALPHA), (*rep.FP_COLOR, 255),
                                                   (*rep.FN_COLOR, 255), (0, 0, 0, rep.IGNORED_ALPHA)]


def test_run_file_reads_only_the_worst_masks(tmp_path, monkeypatch):
    run_file = tmp_path / "run.json"
    segeval.score(FIXTURES / "pred", FIXTURES / "gt", classes=CLASSES).save(run_file)
    reads: list[str] = []
    real = segeval.reading.io.read_mask

    def counting(path, *args, **kwargs):
        reads.append(Path(path).name)
        return real(path, *args, **kwargs)

    def no_scoring(*args, **kwargs):
        raise AssertionError("report --run scored again")

    monkeypatch.setattr(segeval.reading.io, "read_mask", counting)  # every mask is read through io.read_pair
    monkeypatch.setattr(segeval.scoring.evaluate, "score", no_scoring)
    out = tmp_path / "r"
    r = runner.invoke(app, ["report", "--run", str(run_file), str(FIXTURES / "pred"), str(FIXTURES / "gt"),
                            "--out", str(out), "--worst", "2"])
    assert r.exit_code == 0, r.output
    run = segeval.Run.load(run_file)
    worst = [run.image_names[i] for i in np.argsort(run.image_miou)[:2]]
    assert sorted(reads) == sorted([f"{n}.png" for n in worst] * 2)  # ground truth and prediction of each
    check_links(out)

    reads.clear()
    r = runner.invoke(app, ["report", "--run", str(run_file), str(FIXTURES / "pred"), str(FIXTURES / "gt"),
                            "--out", str(tmp_path / "p"), "--plots-only"])
    assert r.exit_code == 0, r.output
    assert reads == []
    assert sorted(p.relative_to(tmp_path / "p").as_posix() for p in (tmp_path / "p").rglob("*.png")) == PLOT_NAMES
    assert not (tmp_path / "p" / "index.html").exists()


def test_worst_by_class(tmp_path):
    run = segeval.score(FIXTURES / "pred", FIXTURES / "gt", classes=CLASSES)
    _, image_iou, _ = reference_image_iou()
    car = image_iou[:, 4]
    assert not np.isnan(car).any()
    assert rep.worst_images(run, 2, 4) == list(np.argsort(car, kind="stable")[:2])
    assert rep.worst_images(run, 4) == list(np.argsort(np.nanmean(image_iou, axis=1), kind="stable"))
    assert rep.worst_images(run, 10, 5) == []  # bus is in no image
    out = tmp_path / "r"
    r = runner.invoke(app, ["report", str(FIXTURES / "pred"), str(FIXTURES / "gt"), "-c", CLASSES, "--out", str(out),
                            "--worst", "2", "--class", "car"])
    assert r.exit_code == 0, r.output
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "Worst 2 images by IoU of class 4 (car)" in page and "car IoU" in page and "and car first" in page
    # the chosen class's layer is the one shown first, and first in the class menu
    links = parse(out / "index.html")
    layers = [i["src"] for i in links.imgs if i.get("class") == "layer"]
    assert layers and all(src.endswith("_c4.png") for src in layers)
    assert re.search(r'<select class="filter"><option value="[^"]+_c4.png">4 car', page)
    check_links(out)


def test_refuses_a_non_empty_out(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "notes.md").write_text("mine")
    args = ["report", str(FIXTURES / "pred"), str(FIXTURES / "gt"), "-c", CLASSES, "--out", str(out), "--plots-only"]
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert "not empty" in r.output and "--overwrite" in r.output
    assert [p.name for p in out.iterdir()] == ["notes.md"]
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0


def test_bad_options(tmp_path):
    base = ["report", str(FIXTURES / "pred"), str(FIXTURES / "gt"), "-c", CLASSES]
    r = runner.invoke(app, [*base, "--out", str(tmp_path / "a"), "--worst", "-1"])
    assert r.exit_code == 2 and "--worst" in r.output
    r = runner.invoke(app, [*base, "--out", str(tmp_path / "b"), "--class", "cat"])
    assert r.exit_code == 2 and "cat" in r.output
    run_file = tmp_path / "run.json"
    segeval.score(FIXTURES / "pred", FIXTURES / "gt", num_classes=6).save(run_file)
    r = runner.invoke(app, [*base[:3], "--run", str(run_file), "-k", "7", "--out", str(tmp_path / "c")])
    assert r.exit_code == 2 and "7" in r.output


def test_plot_functions_draw_on_given_axes():
    from matplotlib.figure import Figure

    run = segeval.score(FIXTURES / "pred", FIXTURES / "gt", num_classes=6)  # no colours: generated palette
    fig = Figure(figsize=(12, 4))
    axes = fig.subplots(1, 3)
    for fn, ax in zip((rep.plot_class_iou, rep.plot_confusion, rep.plot_image_miou), axes, strict=True):
        assert fn(run, ax=ax) is fig
    # what they draw: the bars' lengths are the IoUs (0 for the absent class), the heat map the rows of the
    # counts normalised (misses last; the absent class's row blank), the histogram one count per image
    _, image_iou, total = reference_image_iou()
    tp = np.diag(total[:, :6]).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / (total.sum(1) + total[:, :6].sum(0) - tp)
    # the absent class (bus, 5) is left out of both
    assert len(axes[0].patches) == 5
    np.testing.assert_allclose([b.get_width() for b in axes[0].patches], iou[:5], rtol=1e-12)
    heat = np.ma.filled(axes[1].images[0].get_array().astype(float), np.nan)
    present = total[:5][:, [0, 1, 2, 3, 4, 6]]  # column 6: misses
    np.testing.assert_allclose(heat, present / present.sum(1, keepdims=True), rtol=1e-12)
    counts = [b.get_height() for b in axes[2].patches]
    assert len(counts) == 20 and sum(counts) == 4
    for m in np.nanmean(image_iou, axis=1):  # each image in its 0.05-wide bin
        assert counts[min(int(m / 0.05), 19)] >= 1
    assert rep.palette(run.classes).shape == (6, 3)
    assert len({tuple(c) for c in rep.palette(run.classes)}) == 6


def test_panel_shape():
    assert rep.panel_shape(1024, 2048) == (320, 640)
    assert rep.panel_shape(64, 96) == (192, 288)
    assert rep.panel_shape(300, 300) == (300, 300)
    assert rep.panel_shape(513, 513) == (513, 513)


# ----------------------------------------------------------------------------- a real browser


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    profile = tempfile.mkdtemp(prefix="segeval-chromium-")
    try:
        return subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=90, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.skipif(not CHROMIUM.exists(),
                    reason="/usr/bin/chromium is absent (apt-get install chromium; CI installs it)")
def test_report_in_headless_chromium(built, tmp_path):
    url = (built / "index.html").resolve().as_uri()
    n_imgs = len(parse(built / "index.html").imgs)

    shot = tmp_path / "shot.png"
    r = _chromium(f"--screenshot={shot}", "--window-size=1280,2000", url)
    assert shot.is_file(), r.stderr[-2000:]
    with Image.open(shot) as im:
        assert im.format == "PNG" and im.size == (1280, 2000)
        a = np.asarray(im.convert("RGB"))
    assert len(np.unique(a.reshape(-1, 3), axis=0)) > 50  # text, plots and colours, not a blank page

    # the page records on <body data-images="loaded/total"> how many <img> decoded (complete, naturalWidth > 0)
    r = _chromium("--virtual-time-budget=10000", "--dump-dom", url)
    m = re.search(r'<body[^>]*data-images="(\d+)/(\d+)"', r.stdout)
    assert m, r.stdout[:500] + r.stderr[-2000:]
    assert int(m.group(2)) == n_imgs
    assert int(m.group(1)) == n_imgs, f"{n_imgs - int(m.group(1))} broken images"

    # and the check does see a broken image
    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    (copy / parse(built / "index.html").imgs[-1]["src"]).unlink()
    r = _chromium("--virtual-time-budget=10000", "--dump-dom", (copy / "index.html").resolve().as_uri())
    assert f'data-images="{n_imgs - 1}/{n_imgs}"' in r.stdout


# The page is driven from the test: a copy of index.html beside it (same relative links) with two scripts
# added, one first in <head> that records errors and console.error calls, one that runs the actions after
# load and writes what it saw as JSON on <body data-test>, read back with --dump-dom.
_RECORD_ERRORS = """<script>
window.__errors = [];
window.addEventListener("error", function (e) { window.__errors.push(String(e.message || e)); }, true);
(function () { var ce = console.error; console.error = function () {
  window.__errors.push(Array.prototype.join.call(arguments, " ")); ce.apply(console, arguments); }; })();
</script>"""

_DRIVE = """<script>
window.addEventListener("load", async function () {
  var out = {};
  function decodes(src) {
    return new Promise(function (res) {
      var i = new Image();
      i.onload = function () { res(i.naturalWidth > 0); };
      i.onerror = function () { res(false); };
      i.src = src;
    });
  }
  try {
    var srcs = new Set();
    document.querySelectorAll("*").forEach(function (el) {
      Array.prototype.forEach.call(el.attributes, function (a) {
        if (a.name.indexOf("data-src") === 0 || (el.tagName === "OPTION" && a.name === "value")) srcs.add(a.value);
      });
    });
    var ok = await Promise.all(Array.from(srcs).map(decodes));
    out.switchable = ok.length; out.switchable_decoded = ok.filter(Boolean).length;
    out.imgs = document.images.length;
    out.imgs_decoded = Array.prototype.filter.call(document.images, function (i) {
      return i.complete && i.naturalWidth > 0; }).length;
    %s
  } catch (e) { out.exception = String(e && e.stack || e); }
  out.errors = window.__errors;
  document.body.setAttribute("data-test", JSON.stringify(out));
});
</script>"""


def drive(out: Path, actions: str) -> dict:
    """Open out/index.html in headless Chromium, run ``actions`` (JavaScript filling ``out``) after load,
    and return what they recorded, with every image's and every switchable image's decoding, and the errors."""
    page = (out / "index.html").read_text(encoding="utf-8")
    test_page = out / "_drive.html"
    test_page.write_text(page.replace("<head>", "<head>" + _RECORD_ERRORS, 1)
                         .replace("</body>", (_DRIVE % actions) + "</body>", 1), encoding="utf-8")
    try:
        r = _chromium("--virtual-time-budget=20000", "--enable-logging=stderr", "--v=0", "--dump-dom",
                      test_page.resolve().as_uri())
    finally:
        test_page.unlink()
    m = re.search(r'<body[^>]*data-test="([^"]*)"', r.stdout)
    assert m, r.stdout[-500:] + r.stderr[-2000:]
    got = json.loads(html.unescape(m.group(1)))
    assert "exception" not in got, got["exception"]
    assert got["errors"] == [], got["errors"]
    assert not re.search(r"Uncaught|CONSOLE\(\d+\)\].*[Ee]rror", r.stderr), r.stderr[-2000:]
    assert got["imgs"] > 0 and got["imgs_decoded"] == got["imgs"], got
    assert got["switchable"] > 0 and got["switchable_decoded"] == got["switchable"], got
    return got


_SORT_AND_VIEW = """
function col(i) {
  return Array.prototype.map.call(document.querySelectorAll("#classes tbody tr"),
                                  function (r) { return r.cells[i].textContent.trim(); });
}
var th = document.querySelectorAll("#classes th");
th[2].click(); out.iou_asc = col(0); out.iou_sort = th[2].getAttribute("aria-sort");
th[2].click(); out.iou_desc = col(0); out.iou_sort2 = th[2].getAttribute("aria-sort");
th[1].click(); out.by_name = col(1);
th[8].click(); th[8].click(); out.fp_desc = col(0);
var v = document.querySelector(".viewer"), layer = v.querySelector("img.layer");
out.first = layer.getAttribute("src");
v.querySelector('button[data-show="gt"]').click();
out.gt = layer.getAttribute("src"); out.gt_layer = v.getAttribute("data-layer");
out.gt_on = v.querySelector("button.on").textContent;
v.querySelector('button[data-show="pred"]').click(); out.pred = layer.getAttribute("src");
var r = v.querySelector("input.opacity"); r.value = 30; r.dispatchEvent(new Event("input"));
out.opacity = layer.style.opacity;
var sel = v.querySelector("select.filter");
sel.selectedIndex = sel.options.length - 1; sel.dispatchEvent(new Event("change"));
out.filtered = layer.getAttribute("src"); out.filtered_layer = v.getAttribute("data-layer");
out.last_option = sel.options[sel.options.length - 1].value;
v.querySelector('button[data-show="gt"]').click(); v.querySelector('button[data-show="errors"]').click();
out.back = layer.getAttribute("src");
await new Promise(function (res) { if (layer.complete) res(); else layer.onload = res; });
out.back_width = layer.naturalWidth;
"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent")
def test_sort_and_viewer_in_chromium(built, tmp_path):
    got = drive(built, _SORT_AND_VIEW)
    _, _, total = reference_image_iou()
    tp = np.diag(total[:, :6]).astype(float)
    fp = total[:, :6].sum(0) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / (total.sum(1) + fp)
    order = np.argsort(iou[:5], kind="stable")
    assert got["iou_asc"] == [str(i) for i in order] + ["5"] and got["iou_sort"] == "ascending"
    assert got["iou_desc"] == [str(i) for i in order[::-1]] + ["5"] and got["iou_sort2"] == "descending"  # NaN last
    assert [n.split()[0] for n in got["by_name"]] == sorted(["background", "road", "building", "vegetation", "car",
                                                             "bus"])
    assert got["fp_desc"] == [str(i) for i in np.argsort(-fp, kind="stable")]
    stem = got["first"].rsplit("_", 1)[0]
    assert got["first"] == f"{stem}_errors.png"
    assert (got["gt"], got["gt_layer"], got["gt_on"]) == (f"{stem}_gt.png", "gt", "ground truth")
    assert got["pred"] == f"{stem}_pred.png"
    assert float(got["opacity"]) == pytest.approx(0.3)
    # the class menu redraws the error layer with that class's TP / FP / FN, and switches to it
    assert got["filtered"] == got["last_option"] == f"{stem}_c4.png" and got["filtered_layer"] == "errors"
    assert got["back"] == f"{stem}_c4.png" and got["back_width"] == 288

    # and the checks do fail: a script error, a broken layer image
    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    index = copy / "index.html"
    page = index.read_text(encoding="utf-8")
    index.write_text(page.replace("</body>", "<script>notDefined();</script></body>"), encoding="utf-8")
    with pytest.raises(AssertionError, match="notDefined"):
        drive(copy, "")
    index.write_text(page, encoding="utf-8")
    (copy / f"{stem}_c4.png").write_bytes(b"not a png")
    with pytest.raises(AssertionError, match="switchable"):
        drive(copy, "")


# ----------------------------------------------------------------------------- many classes, and a comparison


K_MANY = 60


def _many_classes(tmp: Path) -> tuple[Path, Path, Path]:
    """gt/, base/ and new/ of 5 images of 40 x 64 with 60 classes (ignore 255 in a band): BASE has noise; NEW
    fixes part of it, breaks other pixels (with other classes and with predicted ignore index, a miss)."""
    rng = np.random.default_rng(7)
    dirs = [tmp / d for d in ("gt", "base", "new")]
    for d in dirs:
        d.mkdir()
    for i in range(5):
        gt = np.kron(rng.integers(0, K_MANY, (4, 8)), np.ones((10, 8), np.int64)).astype(np.uint8)
        gt[:, 30:33] = 255
        base = gt.copy()
        noise = rng.random(gt.shape) < 0.1 + 0.05 * i
        base[noise] = rng.integers(0, K_MANY, int(noise.sum()))
        new = base.copy()
        fix = rng.random(gt.shape) < 0.5
        new[fix] = gt[fix]
        brk = rng.random(gt.shape) < 0.02 * (4 - i)
        new[brk] = (gt[brk].astype(int) + 1) % K_MANY
        new[brk & (rng.random(gt.shape) < 0.3)] = 255
        for d, a in zip(dirs, (gt, base, new), strict=True):
            Image.fromarray(a).save(d / f"img_{i}.png")
    return tuple(dirs)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> tuple[Path, Path, Path]:
    return _many_classes(tmp_path_factory.mktemp("many"))


@pytest.fixture(scope="module")
def compared(many, tmp_path_factory) -> Path:
    gt, base, new = many
    out = tmp_path_factory.mktemp("cmp") / "report"
    r = runner.invoke(app, ["report", str(new), str(gt), "--baseline-preds", str(base), "-k", str(K_MANY),
                            "--out", str(out), "--worst", "3", "--bootstrap", "500"])
    assert r.exit_code == 0, r.output
    return out


def _changes_by_loops(many: tuple[Path, Path, Path]) -> dict[str, tuple[int, int]]:
    """(fixed, broken) pixels per image by a loop over pixels: right = prediction equals ground truth."""
    gt_dir, base_dir, new_dir = many
    out = {}
    for f in sorted(gt_dir.glob("*.png")):
        g, b, n = (np.asarray(Image.open(d / f.name)).ravel().tolist() for d in (gt_dir, base_dir, new_dir))
        fixed = broken = 0
        for gv, bv, nv in zip(g, b, n, strict=True):
            if gv == 255:
                continue
            fixed += bv != gv and nv == gv
            broken += bv == gv and nv != gv
        out[f.stem] = (fixed, broken)
    return out


def test_comparison_ranking_against_pixel_loops(compared, many):
    expect = _changes_by_loops(many)
    broken = [b for _, b in expect.values()]
    assert all(f for f, _ in expect.values()) and min(broken) == 0 and sum(b > 0 for b in broken) == 4
    page = (compared / "index.html").read_text(encoding="utf-8")
    rows = table_rows(section(page, "images"))
    # every image, most broken first (ties: name order), with its counts
    names = sorted(expect)
    ranked = sorted(names, key=lambda n: (-expect[n][1], names.index(n)))
    assert [r[0] for r in rows] == ranked
    for r in rows:
        fixed, broken = expect[r[0]]
        assert (int(r[1].replace(",", "")), int(r[2].replace(",", ""))) == (broken, fixed)
        assert int(r[3].replace(",", "")) == fixed - broken
    titles = lambda s: re.findall(r'<div class="vtitle">\d+\. (\w+)</div>', section(page, s))  # noqa: E731
    assert titles("broken") == ranked[:3]
    assert titles("fixed") == sorted(names, key=lambda n: (-expect[n][0], names.index(n)))[:3]
    total_fixed, total_broken = (sum(v[i] for v in expect.values()) for i in (0, 1))
    assert f"<b>{total_fixed:,}</b> pixels fixed, <b>{total_broken:,}</b> broken" in page
    check_links(compared)


def test_comparison_layer_pixels(compared, many):
    """The changes layer is green where BASE was wrong and NEW right, red where BASE was right and NEW wrong."""
    gt_dir, base_dir, new_dir = many
    page = (compared / "index.html").read_text(encoding="utf-8")
    first = re.search(r'class="layer" src="(changes/b001_(\w+)_changes.png)"', page)
    assert first
    g, b, n = (np.asarray(Image.open(d / f"{first.group(2)}.png")) for d in (gt_dir, base_dir, new_dir))
    layer = np.asarray(Image.open(compared / first.group(1)).convert("RGBA"))
    up = lambda a: np.repeat(np.repeat(a, 5, 0), 5, 1)  # noqa: E731 - 40 x 64 drawn at 5x
    valid = g != 255
    for where, rgba in ((valid & (b != g) & (n == g), (*rep.TP_COLOR, 255)),
                        (valid & (b == g) & (n != g), (*rep.FP_COLOR, 255)),
                        (valid & (b == g) & (n == g), (0, 0, 0, rep.SHADE_ALPHA)),
                        (~valid, (0, 0, 0, rep.IGNORED_ALPHA))):
        assert where.any()
        assert (layer[up(where)] == rgba).all()


def test_comparison_class_change_and_interval(compared, many):
    from reference import loop_iou

    from segeval.comparing.compare import paired_bootstrap

    gt_dir, base_dir, new_dir = many
    files = sorted(gt_dir.glob("*.png"))
    stack = lambda d: np.concatenate([np.asarray(Image.open(d / f.name)).ravel() for f in files])  # noqa: E731
    g = stack(gt_dir)
    base_iou = np.array(loop_iou(g, stack(base_dir), K_MANY, 255))
    new_iou = np.array(loop_iou(g, stack(new_dir), K_MANY, 255))
    page = (compared / "index.html").read_text(encoding="utf-8")
    rows = table_rows(section(page, "classes"))
    present = np.flatnonzero(~(np.isnan(base_iou) & np.isnan(new_iou)))
    assert [int(r[0]) for r in rows] == list(present)
    base = segeval.score(base_dir, gt_dir, K_MANY)
    new = segeval.score(new_dir, gt_dir, K_MANY)
    boot = paired_bootstrap(base.image_counts, new.image_counts, 500, 0, 0.05)
    for r in rows:
        c = int(r[0])
        assert r[2] == f"{base_iou[c]:.4f}" and r[3] == f"{new_iou[c]:.4f}"
        assert float(r[4]) == pytest.approx(new_iou[c] - base_iou[c], abs=6e-5)
        assert (r[5], r[6]) == (f"{boot.classes[c].low:.4f}", f"{boot.classes[c].high:.4f}")
    assert (compared / "plots" / "class_change.png").is_file()


def test_pixel_changes_codes():
    from segeval.presenting.report_compare import BROKEN, CHANGE_IGNORED, FIXED, SAME_RIGHT, SAME_WRONG, pixel_changes

    gt = np.array([[0, 1, 2, 255], [1, 1, 0, 2]], np.uint8)
    base = np.array([[0, 0, 2, 1], [1, 255, 1, 0]], np.uint8)
    new = np.array([[0, 1, 1, 2], [255, 1, 2, 2]], np.uint8)
    codes = pixel_changes(gt, base, new, 3)
    assert codes.tolist() == [[SAME_RIGHT, FIXED, BROKEN, CHANGE_IGNORED], [BROKEN, FIXED, SAME_WRONG, FIXED]]


def test_comparison_bad_options(tmp_path, many):
    gt, base, new = many
    args = ["report", str(new), str(gt), "-k", str(K_MANY)]
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "a"), "--baseline-run", str(tmp_path / "x.json")])
    assert r.exit_code == 2 and "--baseline-preds" in r.output, r.output
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "b"), "--baseline-preds", str(base), "--class", "3"])
    assert r.exit_code == 2 and "--class" in r.output, r.output
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "c"), "--baseline-preds", str(base), "--bootstrap", "-1"])
    assert r.exit_code == 2 and "--bootstrap" in r.output, r.output
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "d"), "--baseline-preds", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "nope" in r.output, r.output
    other = tmp_path / "other"
    other.mkdir()
    Image.fromarray(np.zeros((40, 64), np.uint8)).save(other / "img_0.png")
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "e"), "--baseline-preds", str(other)])
    assert r.exit_code == 2, r.output


def test_many_classes_plots_and_pages(many, tmp_path):
    gt, base, _ = many
    out = tmp_path / "r"
    r = runner.invoke(app, ["report", str(base), str(gt), "-k", str(K_MANY), "--out", str(out), "--worst", "2"])
    assert r.exit_code == 0, r.output
    run = segeval.score(base, gt, K_MANY)
    n_present = int((~np.isnan(run.iou)).sum())
    assert n_present > rep.TOP_CLASSES
    pages = rep.class_pages(run)
    assert [len(p) for p in pages] == [rep.TOP_CLASSES, n_present - rep.TOP_CLASSES]
    np.testing.assert_array_equal(np.sort(np.concatenate(pages)), np.flatnonzero(~np.isnan(run.iou)))
    assert list(run.iou[np.concatenate(pages)]) == sorted(run.iou[~np.isnan(run.iou)])  # lowest first
    assert (out / "plots" / "class_iou_2.png").is_file() and (out / "plots" / "confusion_full.png").is_file()
    page = (out / "index.html").read_text(encoding="utf-8")
    assert 'href="plots/confusion_full.png"' in page and "Top" not in page.split("<section")[0]
    # the top confusions plot: the largest off-diagonal counts, by an independent count
    cm = run.cm.copy()
    cm[np.arange(K_MANY), np.arange(K_MANY)] = 0
    top = rep.top_confusions(run, 5)
    assert [n for _, _, n in top] == sorted(cm.ravel().tolist(), reverse=True)[:5]
    assert all(cm[g, p] == n for g, p, n in top)
    fig = rep.plot_confusion(run)
    assert len(fig.axes[0].patches) == rep.TOP_CONFUSIONS and not fig.axes[0].images
    check_links(out)


_PAGER = """
var p = document.querySelector(".pager"), im = p.querySelector("img.paged");
out.page1 = [im.getAttribute("src"), +im.getAttribute("width"), +im.getAttribute("height")];
var b = p.querySelectorAll("button")[1]; b.click();
await new Promise(function (res) { if (im.complete) res(); else im.onload = res; });
out.page2 = [im.getAttribute("src"), +im.getAttribute("width"), +im.getAttribute("height"), im.naturalWidth,
             im.naturalHeight];
out.on = p.querySelector("button.on").textContent;
var v = document.querySelector(".viewer"), layer = v.querySelector("img.layer");
v.querySelector('button[data-show="baseline"]').click(); out.baseline = layer.getAttribute("src");
v.querySelector('button[data-show="new"]').click(); out.new = layer.getAttribute("src");
v.querySelector('button[data-show="changes"]').click(); out.changes = layer.getAttribute("src");
var th = document.querySelectorAll("#images th"); th[2].click(); th[2].click();
out.by_fixed = Array.prototype.map.call(document.querySelectorAll("#images tbody tr"),
                                        function (r) { return r.cells[0].textContent; });
"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent")
def test_comparison_and_pages_in_chromium(compared, many, tmp_path):
    got = drive(compared, _PAGER.split("var p =")[0] + _PAGER[_PAGER.index("var v ="):])
    stem = got["changes"].rsplit("_", 1)[0]
    assert (got["baseline"], got["new"], got["changes"]) == (f"{stem}_baseline.png", f"{stem}_new.png",
                                                             f"{stem}_changes.png")
    expect = _changes_by_loops(many)
    names = sorted(expect)
    assert got["by_fixed"] == sorted(names, key=lambda n: (-expect[n][0], names.index(n)))
    # the plot pages of a 60-class report
    gt, base, _ = many
    out = tmp_path / "r"
    assert runner.invoke(app, ["report", str(base), str(gt), "-k", str(K_MANY), "--out", str(out),
                               "--worst", "1"]).exit_code == 0
    got = drive(out, _PAGER[: _PAGER.index("var v =")])
    assert got["page1"][0] == "plots/class_iou.png"
    src, w, h, nw, nh = got["page2"]
    assert src == "plots/class_iou_2.png" and (w, h) == (nw, nh) and got["on"] == "2"
    with Image.open(out / src) as im:
        assert im.size == (w, h)


def test_names_are_escaped(tmp_path):
    """Class and image names reach the page only HTML-escaped."""
    names = ["<b>bg</b>", "road & rail", 'say "hi"', "<img src=x onerror=alert(1)>", "car", "bus"]
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(names) + "\n")
    out = tmp_path / "r"
    r = runner.invoke(app, ["report", str(FIXTURES / "pred"), str(FIXTURES / "gt"), "-c", str(classes),
                            "--out", str(out), "--worst", "1"])
    assert r.exit_code == 0, r.output
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "<b>bg</b>" not in page and "<img src=x" not in page
    assert "&lt;b&gt;bg&lt;/b&gt;" in page and "road &amp; rail" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    check_links(out)


def _outside_references(page_text: str) -> list[str]:
    """Everything in a page that a browser could fetch from outside its folder: URLs with a scheme or
    protocol-relative, absolute paths, CSS url()/@import, <link>, <script src>, srcset, <base>, fetches."""
    found = re.findall(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>)]*", page_text)
    found += re.findall(r"""(?:src|href|data-src[\w-]*|action|poster)\s*=\s*["']?\s*(?:/|[a-zA-Z]+:)[^\s"'>]*""",
                        page_text)
    found += re.findall(r"url\s*\(|@import|<link\b|<script\b[^>]*\bsrc\b|srcset|<base\b|<iframe\b|fetch\s*\(|"
                        r"XMLHttpRequest|import\s*\(", page_text, re.I)
    return found


def test_pages_fetch_nothing_from_outside_their_folder(built, compared):
    """Both reports open from disk with no server and no network: no external URL anywhere in the page
    (not only in the <img> and <a> that check_links follows: CSS, scripts, data attributes too)."""
    for out in (built, compared):
        page_text = (out / "index.html").read_text(encoding="utf-8")
        assert "<script>" in page_text and "<style>" in page_text  # the page's own, inline
        assert _outside_references(page_text) == [], out
    # and the check sees what it is for
    for bad in ('<link rel="stylesheet" href="https://cdn.example.org/x.css">', "<img src='/etc/x.png'>",
                '<script src="vendor/sorttable.js"></script>', "<style>body{background:url(x.png)}</style>",
                '<div data-src-gt="file:///tmp/a.png"></div>', "fetch('data.json')"):
        assert _outside_references(bad), bad


def test_comparison_page_escapes_class_and_image_names(tmp_path):
    """The comparison page shows class and image names only HTML-escaped (tables, viewer titles, alt
    texts), and its files get safe names."""
    rng = np.random.default_rng(2)
    for d in ("gt", "base", "new"):
        (tmp_path / d).mkdir()
    for name in ("a&<i>x", "plain"):
        gt = rng.integers(0, 3, (20, 20)).astype(np.uint8)
        base = gt.copy()
        base[rng.random(gt.shape) < 0.3] = 1
        new = gt.copy()
        new[rng.random(gt.shape) < 0.2] = 2
        for d, a in (("gt", gt), ("base", base), ("new", new)):
            Image.fromarray(a).save(tmp_path / d / f"{name}.png")
    (tmp_path / "classes.txt").write_text("<b>bg</b>\n<img src=x onerror=alert(1)>\na & b\n")
    out = tmp_path / "rep"
    r = runner.invoke(app, ["report", str(tmp_path / "new"), str(tmp_path / "gt"), "--baseline-preds",
                            str(tmp_path / "base"), "-c", str(tmp_path / "classes.txt"), "--out", str(out),
                            "--worst", "2", "--bootstrap", "50"])
    assert r.exit_code == 0, r.output
    page_text = (out / "index.html").read_text(encoding="utf-8")
    for raw in ("<b>bg</b>", "<img src=x", "<i>x", "a & b"):
        assert raw not in page_text, raw
    for escaped in ("&lt;b&gt;bg&lt;/b&gt;", "&lt;img src=x onerror=alert(1)&gt;", "a &amp; b", "a&amp;&lt;i&gt;x"):
        assert escaped in page_text, escaped
    check_links(out)


def test_comparison_counts_leave_out_the_roi_and_the_ignored_pixels(tmp_path):
    """With --roi, "fixed" and "broken" count only pixels inside the ROI whose ground truth is scored;
    checked against a loop over pixels (a predicted ignore index is wrong)."""
    rng = np.random.default_rng(1)
    dirs = {d: tmp_path / d for d in ("gt", "base", "new", "roi")}
    for d in dirs.values():
        d.mkdir()
    expect = {}
    for i in range(3):
        gt = rng.integers(0, 4, (30, 40)).astype(np.uint8)
        gt[:, :3] = 255
        base = gt.copy()
        m = rng.random(gt.shape) < 0.3
        base[m] = rng.integers(0, 4, int(m.sum()))
        new = gt.copy()
        m = rng.random(gt.shape) < 0.25
        new[m] = rng.integers(0, 4, int(m.sum()))
        new[rng.random(gt.shape) < 0.05] = 255
        roi = (rng.random(gt.shape) < 0.6).astype(np.uint8) * 255
        for d, a in zip(dirs, (gt, base, new, roi), strict=True):
            Image.fromarray(a).save(dirs[d] / f"im{i}.png")
        fixed = broken = 0
        for g, b, n, r in zip(gt.ravel().tolist(), base.ravel().tolist(), new.ravel().tolist(), roi.ravel().tolist(),
                              strict=True):
            if g == 255 or r == 0:
                continue
            fixed += b != g and n == g
            broken += b == g and n != g
        expect[f"im{i}"] = (fixed, broken)
    out = tmp_path / "rep"
    r = runner.invoke(app, ["report", str(dirs["new"]), str(dirs["gt"]), "--baseline-preds", str(dirs["base"]),
                            "-k", "4", "--roi", str(dirs["roi"]), "--out", str(out), "--worst", "1",
                            "--bootstrap", "50"])
    assert r.exit_code == 0, r.output
    rows = table_rows(section((out / "index.html").read_text(encoding="utf-8"), "images"))
    got = {row[0]: (int(row[2].replace(",", "")), int(row[1].replace(",", ""))) for row in rows}
    assert got == expect
