"""Start-up: what ``import segeval`` and each command load, checked in fresh interpreters via sys.modules."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import FIXTURES, ROOT

from segeval.core import native

HEAVY = ("pandas", "matplotlib", "torch")
# storage back-ends and the cluster engine: only for URLs and --scheduler/--dask-workers, never for plain paths
REMOTE = ("fsspec", "dask", "distributed", "s3fs", "aiohttp")

# Runs the real entry point with the given argv in a fresh interpreter, then reports the exit
# status, stdout, and which of the watched top-level packages were imported.
RUNNER = """
import contextlib, io, json, sys
argv, watched = json.loads(sys.argv[1])
out = io.StringIO()
sys.argv = argv
code = 0
with contextlib.redirect_stdout(out):
    if argv[1:]:
        from segeval.cli import main
        try:
            main()
        except SystemExit as exc:
            code = exc.code or 0
    else:
        import segeval
loaded = sorted(m for m in watched if m in sys.modules)
print(json.dumps({"code": code, "stdout": out.getvalue(), "loaded": loaded}))
"""


def run_fresh(argv: list[str], watched=HEAVY + REMOTE + ("numba",), env: dict[str, str] | None = None) -> dict:
    r = subprocess.run([sys.executable, "-c", RUNNER, json.dumps([argv, list(watched)])],
                       capture_output=True, text=True, cwd=ROOT, timeout=300,
                       env=None if env is None else {**os.environ, **env})
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_import_segeval_loads_no_pandas_matplotlib_torch_or_numba():
    res = run_fresh(["python"])  # argv[1:] empty: just `import segeval`
    assert res["loaded"] == [], res


def test_score_loads_no_pandas_matplotlib_or_torch_and_warm_no_numba(tmp_path):
    """The first run (empty cache) compiles with numba; a warm run loads the kernels' native library
    instead (where a C compiler is at hand) and imports neither numba nor llvmlite."""
    run_file = tmp_path / "run.json"
    argv = ["segeval", "score", str(FIXTURES / "pred"), str(FIXTURES / "gt"), "--classes",
            str(FIXTURES / "classes.json"), "--json", str(run_file), "--no-progress"]
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    watched = HEAVY + ("numba", "llvmlite")
    res = run_fresh(argv, watched, env)
    assert res["code"] == 0, res
    assert "mIoU (data set)" in res["stdout"] and "baseline mIoU" in res["stdout"]
    assert json.loads(run_file.read_text())["format"] == "segeval-run/1"  # it really scored
    assert res["loaded"] == ["llvmlite", "numba"], res  # counting compiled; the table needs none of the others
    warm = run_fresh(argv, watched, env)
    assert warm["code"] == 0 and warm["stdout"] == res["stdout"], warm
    has_native = native.compiler() is not None and native.key("_png_pair_table") is not None
    assert warm["loaded"] == ([] if has_native else ["llvmlite", "numba"]), warm


def test_score_json_format_loads_no_pandas(tmp_path):
    res = run_fresh(["segeval", "score", str(FIXTURES / "pred"), str(FIXTURES / "gt"), "-k", "6",
                     "--format", "json"], watched=HEAVY + REMOTE)
    assert res["code"] == 0, res
    assert json.loads(res["stdout"])["n_images"] == 4
    assert res["loaded"] == [], res


def test_score_csv_still_written_by_pandas(tmp_path):
    csv_file = tmp_path / "classes.csv"
    res = run_fresh(["segeval", "score", str(FIXTURES / "pred"), str(FIXTURES / "gt"), "--classes",
                     str(FIXTURES / "classes.json"), "--csv", str(csv_file), "--no-progress"], watched=HEAVY)
    assert res["code"] == 0, res
    assert csv_file.read_text().splitlines()[0].startswith("id,name,iou,")
    assert res["loaded"] == ["pandas"], res  # asked for, so loaded; still no matplotlib or torch


def test_help_is_complete_and_loads_nothing_heavy():
    top = run_fresh(["segeval", "--help"])
    assert top["code"] == 0 and top["loaded"] == [], top
    for command in ("score", "compare", "maps", "report", "train"):
        assert command in top["stdout"], top["stdout"]
    sub = run_fresh(["segeval", "score", "--help"])
    assert sub["code"] == 0 and sub["loaded"] == [], sub
    for option in ("--classes", "--json", "--csv", "--per-image", "--fail-under", "--skip-bad", "--workers",
                   "--scheduler", "--dask-workers"):
        assert option in sub["stdout"], sub["stdout"]


def test_version_loads_nothing_heavy():
    res = run_fresh(["segeval", "--version"])
    assert res["code"] == 0 and res["stdout"].startswith("segeval "), res
    assert res["loaded"] == [], res
