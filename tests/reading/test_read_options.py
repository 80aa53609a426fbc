"""ReadOptions: checked once when built, recorded in run files, read back from them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from segeval.core.classes import PRESETS, ClassSet
from segeval.errors import SegevalError
from segeval.reading.io import find_pairs
from segeval.reading.options import ReadOptions


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"unknown_color": "drop"}, "`unknown_color` must be error or ignore, got 'drop'"),
    ({"channels": "middle"}, "`channels` must be auto, first or last"),
    ({"threshold": float("nan")}, "`threshold` must be a finite number"),
    ({"label_map": "nonzero", "gt_map": "nonzero"}, "`label_map` and `gt_map` both map the ground truth"),
    ({"label_map": "nonzero", "pred_map": "0:1"}, "`label_map` and `pred_map` both map the predictions"),
    ({"void_colors": ("1,2",)}, "`void_colors`: colour '1,2' is not r,g,b"),
])
def test_bad_options_are_refused_when_built(kwargs, says):
    with pytest.raises(SegevalError) as info:
        ReadOptions(**kwargs)
    assert says in info.value.message


def test_options_are_frozen_and_normalised():
    read = ReadOptions(void_colors=("#e0e0c0", "1, 2, 3", (4, 5, 6)), include=["*.png"])
    assert read.void_colors == ((224, 224, 192), (1, 2, 3), (4, 5, 6))  # hex e0 = 224, c0 = 192
    assert read.include == ("*.png",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        read.threshold = 0.1  # type: ignore[misc]


def test_settings_round_trip_through_a_run_file_record():
    """What a run file records of the options gives the same options back (the map as its spec)."""
    read = ReadOptions(pred_suffix="_p", gt_suffix="_g", allow_missing=True, unknown_color="ignore",
                       void_colors=((1, 2, 3),), gt_map="nonzero", channels="last", threshold=0.25,
                       roi="rois", roi_suffix="_fov", include=("a/*",), exclude=("*.jpg",), skip_bad=True)
    decoding = read.decoding(ClassSet(("bg", "fg"), ((0, 0, 0), (255, 255, 255))))
    recorded = {**read.settings(), **decoding.settings(), "skip_bad": read.skip_bad, **read.selection_settings()}
    assert ReadOptions.from_settings(recorded) == read
    assert ReadOptions.from_settings({}) == ReadOptions()  # an old run file: every option defaulted


def test_a_dict_map_cannot_be_read_back():
    with pytest.raises(SegevalError, match="label map given as a dict"):
        ReadOptions.from_settings({"map": "(dict)"})


def test_decoding_loads_the_maps_and_palette():
    d = ReadOptions(label_map="0:1,1:0", void_colors=((224, 224, 192),)).decoding(PRESETS["voc"], 255)
    assert d.n_classes == 21 and d.palette is not None and d.void_colors == ((224, 224, 192),)
    got = d.map_for("gt").apply(np.array([[0, 1, 2]], np.uint8), 255)
    np.testing.assert_array_equal(got, [[1, 0, 2]])  # by hand: 0 and 1 swapped, 2 kept
    with pytest.raises(SegevalError, match="`gt_map`: is neither"):
        ReadOptions(gt_map="no-such-map").decoding(ClassSet.numbered(2))


def test_find_pairs_returns_the_skipped_files_instead_of_filling_a_list(tmp_path):
    for d in ("p", "g"):
        (tmp_path / d).mkdir()
    for name in ("a", "b"):
        Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "g" / f"{name}.png")
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "p" / "a.png")
    (tmp_path / "p" / "c.jpg").write_bytes(b"not a mask")
    found = find_pairs(tmp_path / "p", tmp_path / "g", ReadOptions(skip_bad=True))
    assert [p.name for p in found.pairs] == ["a"]
    assert sorted((s.name, s.reason.split(" ")[0]) for s in found.skipped) == [("b", "has"), ("c", "is")]
    with pytest.raises(SegevalError, match="c.jpg: is a JPEG"):
        find_pairs(tmp_path / "p", tmp_path / "g", ReadOptions())
