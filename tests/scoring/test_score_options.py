"""ScoreOptions and score(): the classes resolved once, the options checked once, typed outcomes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from segeval.core.classes import ClassSet
from segeval.errors import SegevalError
from segeval.reading.io import Skipped, pair_masks
from segeval.reading.options import ReadOptions
from segeval.scoring.evaluate import Counts, Run, score, score_pair, score_pairs
from segeval.scoring.options import ScoreOptions


def test_build_resolves_the_classes_and_defaults():
    opts = ScoreOptions.build(3)
    assert opts.classes == ClassSet(("0", "1", "2")) and opts.num_classes == 3
    assert (opts.ignore_index, opts.baseline_class, opts.check_binary_255) == (255, 0, True)
    ade = ScoreOptions.build(classes=ClassSet(("void", "wall", "sky")), ignore_index=0)
    assert ade.baseline_class == 1 and not ade.check_binary_255  # 0 is ignored: the baseline is class 1


@pytest.mark.parametrize(("kwargs", "says"), [
    ({}, "the number of classes is not given"),
    ({"num_classes": 0}, "`num_classes` must be at least 1, got 0"),
    ({"num_classes": 3, "classes": "voc"}, "`num_classes` 3 but the classes list has 21 names"),
    ({"num_classes": 3, "baseline_class": 3}, "baseline class 3 is not a scored class (0..2"),
    ({"num_classes": 3, "ignore_index": 1, "baseline_class": 1}, "baseline class 1 is not a scored class"),
    ({"num_classes": 3, "workers": 0}, "`workers` must be at least 1, got 0"),
])
def test_bad_options_are_refused_once(kwargs, says):
    with pytest.raises(SegevalError) as info:
        ScoreOptions.build(**kwargs)
    assert says in info.value.message


def _masks(tmp_path, pairs):
    for d in ("p", "g"):
        (tmp_path / d).mkdir(exist_ok=True)
    for name, (g, p) in pairs.items():
        Image.fromarray(np.asarray(g, np.uint8)).save(tmp_path / "g" / f"{name}.png")
        if p is not None:
            Image.fromarray(np.asarray(p, np.uint8)).save(tmp_path / "p" / f"{name}.png")


def test_score_takes_options_objects_or_their_keywords_alike(tmp_path):
    _masks(tmp_path, {"a": ([[0, 1], [1, 255]], [[0, 1], [0, 1]]), "b": ([[2, 2], [0, 1]], [[2, 0], [0, 1]])})
    by_keywords = score(tmp_path / "p", tmp_path / "g", 3, ignore_index=255, pred_suffix="", workers=1)
    by_objects = score(tmp_path / "p", tmp_path / "g", read=ReadOptions(), scoring=ScoreOptions.build(3, workers=1))
    assert by_keywords.to_dict() == by_objects.to_dict()
    # by hand: gt (row) x pred (column) over the 7 valid pixels of both images
    np.testing.assert_array_equal(by_objects.cm[:, :3], [[2, 0, 0], [1, 2, 0], [1, 0, 1]])
    assert by_objects.ignored == 1 and by_objects.ignore_index == 255
    with pytest.raises(TypeError, match="unexpected keyword arguments: n_classes"):
        score(tmp_path / "p", tmp_path / "g", n_classes=3)
    with pytest.raises(TypeError, match="not both"):
        score(tmp_path / "p", tmp_path / "g", 3, scoring=ScoreOptions.build(3))


def test_a_pair_is_counts_or_skipped(tmp_path):
    _masks(tmp_path, {"a": ([[0, 1]], [[0, 1]]), "b": ([[0, 1]], [[0, 7]])})  # b: label 7 with K = 2
    pairs, _ = pair_masks(tmp_path / "p", tmp_path / "g")
    opts = ScoreOptions.build(2, workers=1)
    good = score_pair(pairs[0], opts)
    assert isinstance(good, Counts) and (good.pixels, good.ignored) == (2, 0)
    bad = score_pair(pairs[1], opts, skip_bad=True)
    assert isinstance(bad, Skipped) and bad.name == "b" and "outside 0..1" in bad.reason
    with pytest.raises(SegevalError, match="outside 0..1"):
        score_pair(pairs[1], opts)
    run = score_pairs(pairs, opts, skip_bad=True)
    assert run.image_names == ["a"] and run.pixels == 2 and [s["name"] for s in run.skipped] == ["b"]
    with pytest.raises(SegevalError, match="no pair could be scored"):
        score_pairs(pairs[1:], opts, skip_bad=True)


def test_run_carries_its_ignore_index_and_baseline_class():
    cm = np.zeros((2, 3), np.int64)
    counts = np.zeros((0, 3, 2), np.int64)
    old = Run(ClassSet.numbered(2), cm, [], counts, 0, 0, {"ignore_index": 0, "baseline_class": 1})
    assert (old.ignore_index, old.baseline_class) == (0, 1)  # from the settings (a run file's)
    new = Run(ClassSet.numbered(2), cm, [], counts, 0, 0, ignore_index=7, baseline_class=1)
    assert new.settings == {"ignore_index": 7, "baseline_class": 1}  # recorded as a run file holds them
    assert Run.from_dict(new.to_dict()).ignore_index == 7
    bare = Run(ClassSet.numbered(2), cm, [], counts, 0, 0)
    assert (bare.ignore_index, bare.baseline_class) == (255, 0)


def test_a_run_says_how_its_masks_were_read(tmp_path):
    _masks(tmp_path, {"a": ([[0, 1]], [[1, 1]])})
    read = ReadOptions(gt_map="0:1,1:0", include=("*.png",), skip_bad=True)
    run = score(tmp_path / "p", tmp_path / "g", 2, read=read, workers=1)
    in_effect = dataclasses.replace(read, void_colors=())  # the run records the void colours used: none here
    assert run.read_options == in_effect
    assert Run.from_dict(run.to_dict()).read_options == in_effect  # through a run file
    np.testing.assert_array_equal(run.cm[:, :2], [[0, 1], [0, 1]])  # by hand: gt [0, 1] mapped to [1, 0]
