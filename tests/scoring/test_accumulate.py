"""segeval.Accumulator: in-memory masks (NumPy, torch CPU/CUDA) counted into the same Run as files."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import segeval
from segeval.core.kernels import confusion_matrix
from segeval.errors import MaskError, SegevalError
from segeval.scoring.accumulate import Accumulator, all_gather_accumulators

K = 5
IGNORE = 255


def masks(seed: int = 0, n: int = 6, shape: tuple[int, int] = (23, 37)) -> tuple[np.ndarray, np.ndarray]:
    """A batch of ground truths and predictions with ignored ground truth and missed predictions."""
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, K, (n, *shape)).astype(np.uint8)
    gt[:, :3, :5] = IGNORE
    pred = np.where(rng.random((n, *shape)) < 0.6, gt, rng.integers(0, K, (n, *shape))).astype(np.uint8)
    pred[rng.random((n, *shape)) < 0.05] = IGNORE  # misses on valid ground truth (and some on ignored)
    gt[-1][gt[-1] == 3] = 0  # a class absent from one image
    pred[-1][pred[-1] == 3] = 0
    return gt, pred


def bincount_cm(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """The reference (K, K + 1) matrix of one image: np.bincount over gt * (K + 1) + pred."""
    g, p = gt.astype(np.int64).ravel(), pred.astype(np.int64).ravel()
    valid = g != IGNORE
    p = np.where(p == IGNORE, K, p)
    return np.bincount(g[valid] * (K + 1) + p[valid], minlength=K * (K + 1)).reshape(K, K + 1)


def write_pngs(root: Path, gt: np.ndarray, pred: np.ndarray, names: list[str]) -> tuple[Path, Path]:
    for side, arr in (("gt", gt), ("pred", pred)):
        (root / side).mkdir()
        for name, m in zip(names, arr, strict=True):
            Image.fromarray(m).save(root / side / f"{name}.png")
    return root / "pred", root / "gt"


def test_against_score_on_the_same_masks_as_png(tmp_path):
    gt, pred = masks()
    names = [f"img{i:02d}" for i in range(len(gt))]
    preds, gts = write_pngs(tmp_path, gt, pred, names)
    ref = segeval.score(preds, gts, K, workers=1)
    acc = segeval.Accumulator(K)
    for i in range(len(gt)):
        acc.update(gt[i], pred[i], name=names[i])
    run = acc.run()
    np.testing.assert_array_equal(run.cm, ref.cm)
    np.testing.assert_array_equal(run.image_counts, ref.image_counts)
    assert (run.pixels, run.ignored) == (ref.pixels, ref.ignored)
    assert run.image_names == ref.image_names
    assert run.miou == ref.miou and run.imagewise_miou == ref.imagewise_miou
    assert run.baseline_miou == ref.baseline_miou
    # the run file: identical apart from the settings that describe files and directories
    mine, theirs = run.to_dict(), ref.to_dict()
    s_mine, s_theirs = mine.pop("settings"), theirs.pop("settings")
    assert mine == theirs
    assert s_mine == {k: s_theirs[k] for k in ("ignore_index", "n_classes", "baseline_class")}
    # save / load / compare take it like any run file
    run.save(tmp_path / "acc.json")
    back = segeval.Run.load(tmp_path / "acc.json")
    np.testing.assert_array_equal(back.image_counts, ref.image_counts)
    from segeval.comparing.compare import compare_runs

    cmp = compare_runs([ref, back], n_bootstrap=50, n_permutations=50)  # pairs image by image, no difference
    assert cmp is not None


def test_against_bincount_per_image():
    gt, pred = masks(seed=1)
    acc = Accumulator(K)
    acc.update(gt, pred)
    want = np.stack([bincount_cm(g, p) for g, p in zip(gt, pred, strict=True)])
    np.testing.assert_array_equal(acc.cm, want.sum(0))
    tp = np.stack([np.diag(c[:, :K]) for c in want])
    fp = want[:, :, :K].sum(1) - tp
    fn = want.sum(2) - tp
    np.testing.assert_array_equal(acc.image_counts, np.stack([tp, fp, fn], 1))
    assert acc.pixels == gt.size
    assert acc.ignored == int((gt == IGNORE).sum())
    assert acc.run().image_names == [f"{i:06d}" for i in range(len(gt))]


def test_batch_and_one_by_one_and_dtypes_agree():
    gt, pred = masks(seed=2)
    batch = Accumulator(K)
    batch.update(gt, pred, name=[f"n{i}" for i in range(len(gt))])
    single = Accumulator(K)
    for i in range(len(gt)):
        single.update(gt[i].astype(np.int32), pred[i].astype(np.int64), name=f"n{i}")
    assert batch.run().to_dict() == single.run().to_dict()


def test_merge_equals_one_accumulator():
    gt, pred = masks(seed=3, n=7)
    whole = Accumulator(K)
    whole.update(gt, pred, name=[f"n{i}" for i in range(7)])
    a, b = Accumulator(K), Accumulator(K)
    a.update(gt[:3], pred[:3], name=[f"n{i}" for i in range(3)])
    b.update(gt[3:], pred[3:], name=[f"n{i}" for i in range(3, 7)])
    assert a.merge(b) is a
    assert a.run().to_dict() == whole.run().to_dict()
    with pytest.raises(SegevalError, match="'n3' is in both"):
        a.merge(b)
    with pytest.raises(SegevalError, match="ignore index"):
        a.merge(Accumulator(K, ignore_index=0))
    with pytest.raises(ValueError, match="cannot merge itself"):
        a.merge(a)
    a.reset()
    a.update(gt, pred, name=[f"n{i}" for i in range(7)])  # the names are free again
    assert a.run().to_dict() == whole.run().to_dict()


def test_names_refused_twice_and_checked():
    gt, pred = masks(n=2)
    acc = Accumulator(K)
    acc.update(gt[0], pred[0], name="a")
    with pytest.raises(SegevalError, match="'a' is counted twice"):
        acc.update(gt[1], pred[1], name="a")
    with pytest.raises(SegevalError, match="counted twice"):
        acc.update(gt, pred, name=["b", "b"])
    with pytest.raises(ValueError, match="sequence of 2 names"):
        acc.update(gt, pred, name="c")
    assert len(acc) == 1
    acc.update(gt[1], pred[1])  # auto-named "000001", its place
    assert acc.run().image_names == ["a", "000001"]
    clash = Accumulator(K)
    clash.update(gt[0], pred[0])
    clash.update(gt[1], pred[1], name="000000")
    with pytest.raises(SegevalError, match="automatic name"):
        clash.run()


def test_label_errors_name_the_image_and_count_nothing():
    gt, pred = masks(n=3)
    acc = Accumulator(K)
    bad = gt.copy()
    bad[1, 5, 5] = K  # label K: outside 0..K-1
    with pytest.raises(MaskError, match=r"^b: ground truth has labels outside 0\.\.4: 5 \(1 px\)"):
        acc.update(bad, pred, name=["a", "b", "c"])
    neg_pred = pred.astype(np.int16)
    neg_pred[0, 10, 10] = -1
    gt[0, 10, 10] = 1
    with pytest.raises(MaskError, match=r"image 0 \(unnamed\): prediction has labels outside 0\.\.4: -1 \(1 px\).*"
                       "check `num_classes` and `ignore_index`"):
        acc.update(gt, neg_pred)
    assert len(acc) == 0 and acc.pixels == 0 and int(acc.cm.sum()) == 0
    with pytest.raises(MaskError, match="shape"):
        acc.update(gt[0], pred[0, :5])
    with pytest.raises(TypeError, match="integers"):
        acc.update(gt[0].astype(np.float32), pred[0])


def test_report_takes_the_run_with_the_masks_directories(tmp_path):
    gt, pred = masks(n=3)
    names = ["a", "b", "c"]
    preds, gts = write_pngs(tmp_path, gt, pred, names)
    acc = Accumulator(K)
    acc.update(gt, pred, name=names)
    from segeval.presenting.report import report

    index = report(preds, gts, tmp_path / "rep", run=acc.run(), worst=2)
    assert index.is_file() and "000000" not in index.read_text()


def test_numpy_use_imports_no_torch():
    code = ("import sys, numpy as np, segeval; a = segeval.Accumulator(3); "
            "a.update(np.zeros((2, 4, 4), np.uint8), np.ones((2, 4, 4), np.uint8)); "
            "assert a.run().pixels == 32; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_settings_and_classes():
    assert Accumulator(3, ignore_index=0).baseline_class == 1  # as score: class 0 is the ignore index
    with pytest.raises(SegevalError, match="baseline class 0 is not a scored class"):
        Accumulator(3, ignore_index=0, baseline_class=0)
    with pytest.raises(SegevalError, match="`num_classes` 3 but the classes list has 19"):
        Accumulator(3, classes="cityscapes")
    run = Accumulator(None, classes="cityscapes").run()
    assert run.classes.names[0] == "road" and run.image_counts.shape == (0, 3, 19)


torch = pytest.importorskip("torch")


def test_torch_cpu_tensors_equal_numpy():
    gt, pred = masks(seed=4)
    a, b = Accumulator(K), Accumulator(K)
    a.update(gt, pred)
    b.update(torch.from_numpy(gt), torch.from_numpy(pred).to(torch.int64))
    assert a.run().to_dict() == b.run().to_dict()
    with pytest.raises(MaskError, match="labels outside"):
        b.update(torch.from_numpy(gt).to(torch.int64) + K, torch.from_numpy(pred))


def test_the_device_path_counts_as_the_kernel_on_cpu_tensors():
    """The bincount path that CUDA tensors take, run on CPU tensors (torch ops are the same on both)."""
    gt, pred = masks(seed=6)
    acc = Accumulator(K)
    got = acc._device_counts(torch.from_numpy(gt), torch.from_numpy(pred), [None] * len(gt))
    want = np.stack([bincount_cm(g, p) for g, p in zip(gt, pred, strict=True)])
    np.testing.assert_array_equal(got, want)
    zero = Accumulator(3, ignore_index=0)  # the ignore index inside 0..K-1: row 0 left out, predicted 0 a miss
    g = torch.tensor([[0, 1, 2, 1], [2, 2, 0, 1]])
    p = torch.tensor([[1, 0, 2, 2], [0, 2, 1, 1]], dtype=torch.uint8)
    np.testing.assert_array_equal(zero._device_counts(g[None], p[None], [None]),
                                  confusion_matrix(g.numpy(), p.numpy(), 3, 0)[None])
    bad = torch.from_numpy(gt.astype(np.int16))
    bad[4, 1, 1] = -3
    with pytest.raises(MaskError, match=r"^x4: ground truth has labels outside 0\.\.4: -3 \(1 px\)"):
        acc._device_counts(bad, torch.from_numpy(pred), [f"x{i}" for i in range(len(gt))])
    with pytest.raises(TypeError, match="integers"):
        acc._device_counts(bad.float(), torch.from_numpy(pred), [None] * len(gt))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_tensors_counted_on_the_device_equal_numpy():
    gt, pred = masks(seed=5, n=8, shape=(64, 96))
    a, b = Accumulator(K), Accumulator(K)
    a.update(gt, pred)
    b.update(torch.from_numpy(gt).cuda(), torch.from_numpy(pred).cuda())
    assert a.run().to_dict() == b.run().to_dict()
    c = Accumulator(K)  # one image at a time, int64 predictions
    for i in range(len(gt)):
        c.update(torch.from_numpy(gt[i]).cuda(), torch.from_numpy(pred[i]).cuda().long())
    assert c.run().to_dict() == a.run().to_dict()
    bad = torch.from_numpy(gt).cuda()
    bad[2, 0, 40] = 7
    with pytest.raises(MaskError, match=r"image 2 \(unnamed\): ground truth has labels outside 0\.\.4: 7 \(1 px\)"):
        Accumulator(K).update(bad, torch.from_numpy(pred).cuda())


# ----------------------------------------------------------------------------- torch.distributed
def _gather_worker(rank: int, world: int, port: int, out: str) -> None:
    """One rank of a gloo group on 127.0.0.1 (spawned by torch.multiprocessing): count a share, gather."""
    import datetime

    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=30))
    try:
        gt, pred = _gather_masks()
        mine = list(range(rank, 8, world))  # a DistributedSampler's share
        acc = Accumulator(K)
        acc.update(gt[mine], pred[mine], name=[f"im{i}" for i in mine])
        run = acc.all_reduce().run()
        assert all_gather_accumulators(acc).run().to_dict() == run.to_dict()
        run.save(os.path.join(out, f"rank{rank}.json"))
        dup = Accumulator(K)
        dup.update(gt[0], pred[0], name="same")
        try:
            all_gather_accumulators(dup)
        except SegevalError as exc:
            Path(out, f"dup{rank}.txt").write_text(str(exc))
    finally:
        dist.destroy_process_group()


def _gather_masks() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, K, (8, 16, 16)).astype(np.uint8), rng.integers(0, K, (8, 16, 16)).astype(np.uint8)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_all_gather_across_two_gloo_processes(tmp_path):
    import time

    import torch.multiprocessing as mp

    ctx = mp.start_processes(_gather_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=False,
                             start_method="spawn")
    deadline = time.monotonic() + 120
    try:
        while not ctx.join(timeout=5):  # raises when a rank fails
            assert time.monotonic() < deadline, "the 2-process gloo group did not finish in 120 s"
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    runs = [segeval.Run.load(tmp_path / f"rank{r}.json") for r in range(2)]
    assert runs[0].to_dict() == runs[1].to_dict()
    # rank order: rank 0's images (0, 2, 4, 6), then rank 1's (1, 3, 5, 7)
    order = [0, 2, 4, 6, 1, 3, 5, 7]
    assert runs[0].image_names == [f"im{i}" for i in order]
    gt, pred = _gather_masks()
    want = np.stack([bincount_cm(gt[i], pred[i]) for i in order])
    np.testing.assert_array_equal(runs[0].cm, want.sum(0))
    np.testing.assert_array_equal(runs[0].image_counts[:, 0], np.stack([np.diag(c[:, :K]) for c in want]))
    assert runs[0].pixels == gt.size
    for r in range(2):
        assert "rank 1: image name 'same' is in both" in (tmp_path / f"dup{r}.txt").read_text()


def test_all_gather_needs_an_initialized_group():
    with pytest.raises(SegevalError, match="not initialized"):
        all_gather_accumulators(Accumulator(K))
