"""Tests of CompareOptions (checked once, when made) and of compare_files / check_gates reading them.

Expected values are the numbers of runs built by hand here, never the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_run, random_cms

from segeval.comparing.compare import CompareOptions, check_gates, compare_files, compare_runs
from segeval.errors import SegevalError


# The library names its parameters; the command line shows them as flags (tests/test_cli.py, test_compare.py).
@pytest.mark.parametrize("kwargs, message", [
    ({"alpha": 1.0}, "`alpha` must be between 0 and 1, got 1.0"),
    ({"bootstrap": -1}, "`bootstrap` must be 0 (off) or more, got -1"),
    ({"permutations": -2}, "`permutations` must be 0 (off) or more, got -2"),
    ({"seed": -1}, "`seed` must be 0 or more, got -1"),
    ({"class_max_drop": float("inf")}, "`class_max_drop` must be a drop of 0 or more, got inf"),
    ({"min_miou": float("nan")}, "`min_miou` must be a number, got nan"),
    ({"significant": True}, "`significant` applies to `max_drop`"),
    ({"significant": True, "max_drop": 0.1, "permutations": 0}, "`significant` needs the randomization test"),
])
def test_bad_options_are_refused_when_made(kwargs, message):
    with pytest.raises(SegevalError) as e:
        CompareOptions(**kwargs)
    assert e.value.message.startswith(message)


def test_the_comparison_keeps_its_options_and_checks_their_gates(tmp_path):
    cms = random_cms(6, seed=3)
    worse = cms.copy()
    worse[:, 0, 1] += worse[:, 0, 0] // 2  # road half predicted as car
    worse[:, 0, 0] -= worse[:, 0, 0] // 2
    base, new = make_run(cms), make_run(worse)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    base.save(a)
    new.save(b)
    options = CompareOptions(bootstrap=0, permutations=0, min_miou=0.99, max_drop=1.0)
    cmp, gates = compare_files([a, b], options)
    assert cmp.options is options and cmp.labels == (str(a), str(b))
    assert cmp.bootstrap == (None,) and cmp.tests == (None,)
    assert [(g.gate, g.passed) for g in gates] == [("max-drop", True), ("min-miou", False)]
    assert gates[1].value == pytest.approx(new.miou)
    # keywords replace the options' gates; none given: the options' own
    [only] = check_gates(cmp, max_drop=0.0)
    assert only.gate == "max-drop" and not only.passed
    assert [g.gate for g in check_gates(cmp)] == ["max-drop", "min-miou"]
    np.testing.assert_allclose(compare_runs([base, new], options=options).iou, cmp.iou)
    with pytest.raises(SegevalError, match="at least two run files"):
        compare_files([a], options)
