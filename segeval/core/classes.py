"""Class names and colours: presets and files."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from segeval.errors import SegevalError

__all__ = ["ClassSet", "PRESETS", "load_classes", "voc_colors"]

Color = tuple[int, int, int]


@dataclass(frozen=True)
class ClassSet:
    """Names (and colours, when known) of classes ``0 .. K-1``.

    ``void_colors`` are colours of colour-coded masks that mean "no class" (they become the ignore
    index), such as VOC's boundary colour (224, 224, 192); they take no part in comparisons.
    """

    names: tuple[str, ...]
    colors: tuple[Color, ...] | None = None
    void_colors: tuple[Color, ...] = field(default=(), compare=False)

    @property
    def n_classes(self) -> int:
        return len(self.names)

    @classmethod
    def numbered(cls, n_classes: int) -> ClassSet:
        return cls(tuple(str(i) for i in range(n_classes)))


def voc_colors(n: int = 256) -> list[Color]:
    """The PASCAL VOC colour map (bits of the class id spread over R, G, B)."""
    colors = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colors.append((r, g, b))
    return colors


_CITYSCAPES = [
    ("road", (128, 64, 128)), ("sidewalk", (244, 35, 232)), ("building", (70, 70, 70)),
    ("wall", (102, 102, 156)), ("fence", (190, 153, 153)), ("pole", (153, 153, 153)),
    ("traffic light", (250, 170, 30)), ("traffic sign", (220, 220, 0)), ("vegetation", (107, 142, 35)),
    ("terrain", (152, 251, 152)), ("sky", (70, 130, 180)), ("person", (220, 20, 60)),
    ("rider", (255, 0, 0)), ("car", (0, 0, 142)), ("truck", (0, 0, 70)), ("bus", (0, 60, 100)),
    ("train", (0, 80, 100)), ("motorcycle", (0, 0, 230)), ("bicycle", (119, 11, 32)),
]
_VOC = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
]

# Colours of Cityscapes labels that have no train id (unlabeled, ego vehicle, ..., static: black;
# dynamic, ground, parking, rail track, guard rail, bridge, tunnel, caravan, trailer). polegroup and
# license plate share the colours of pole and car, so they read as those classes.
_CITYSCAPES_VOID = (
    (0, 0, 0), (111, 74, 0), (81, 0, 81), (250, 170, 160), (230, 150, 140), (180, 165, 180),
    (150, 100, 100), (150, 120, 90), (0, 0, 90), (0, 0, 110),
)

PRESETS: dict[str, ClassSet] = {
    "cityscapes": ClassSet(tuple(n for n, _ in _CITYSCAPES), tuple(c for _, c in _CITYSCAPES), _CITYSCAPES_VOID),
    "voc": ClassSet(tuple(_VOC), tuple(voc_colors(len(_VOC))), ((224, 224, 192),)),
}


def _color(path: Path, value: object) -> Color:
    if isinstance(value, str) and value.startswith("#") and len(value) == 7:
        return tuple(int(value[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
    if isinstance(value, (list, tuple)) and len(value) == 3 and all(isinstance(v, int) and 0 <= v < 256 for v in value):
        return (value[0], value[1], value[2])
    raise SegevalError(path, f"colour {value!r} is not [r, g, b] or '#rrggbb'", "fix the classes file")


def _from_csv(path: Path, text: str) -> ClassSet:
    """A CSV table with a header: a ``name`` column (any case; ``a;b;c`` synonyms, as ADE20K's
    ``objectInfo150.csv`` writes them, keep the first) and, when there is one, an ``id`` or
    ``idx`` column giving each row's class id (ids not listed are named by their number)."""
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if any(c.strip() for c in r)]
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if "name" not in header:
        raise SegevalError(path, f"is a CSV file without a name column (header: {', '.join(header) or 'none'})",
                           "give the class names a column headed Name")
    col = header.index("name")
    id_col = next((header.index(h) for h in ("id", "idx") if h in header), None)
    names: dict[int, str] = {}
    for n, row in enumerate(rows[1:], 2):
        if len(row) != len(header):
            raise SegevalError(path, f"line {n} has {len(row)} fields, the header {len(header)}", "fix the CSV file")
        name = row[col].split(";")[0].strip()
        if not name:
            raise SegevalError(path, f"line {n} has an empty name", "fix the CSV file")
        if id_col is None:
            cid = len(names)
        else:
            try:
                cid = int(row[id_col])
            except ValueError:
                raise SegevalError(path, f"line {n}: id {row[id_col]!r} is not an integer", "fix the CSV file") \
                    from None
            if cid < 0 or cid in names:
                what = "is negative" if cid < 0 else "appears twice"
                raise SegevalError(path, f"line {n}: class id {cid} {what}", "give each class one id, 0 or more")
        names[cid] = name
    if not names:
        raise SegevalError(path, "lists no classes below its header", "add one row per class")
    return ClassSet(tuple(names.get(i, str(i)) for i in range(max(names) + 1)))


def load_classes(spec: str) -> ClassSet:
    """A preset name (``cityscapes``, ``voc``) or a file: a JSON list of names or of
    ``{"name": ..., "color": [r, g, b]}``, a CSV table with a ``Name`` column (and an ``Idx`` /
    ``id`` column, as ADE20K's ``objectInfo150.csv``), or a text file with one name per line
    (labelme's ``labels.txt``: a first line ``__ignore__`` is id -1, not a class, so that
    ``_background_`` is class 0).

    In the JSON form, an entry with ``"void": true`` (and a colour) is no class: its colour marks
    pixels to ignore in colour-coded masks. The presets' void colours are VOC's (224, 224, 192) and
    the colours of Cityscapes' labels without a train id."""
    if spec in PRESETS:
        return PRESETS[spec]
    path = Path(spec)
    if not path.is_file():
        raise SegevalError(path, "is neither a classes file nor a preset",
                           f"give a file or one of {', '.join(PRESETS)}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SegevalError(path, f"cannot be read ({exc})", "give a UTF-8 text or JSON file") from None
    if path.suffix.lower() == ".json":
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SegevalError(path, f"is not valid JSON ({exc})", "fix the classes file") from None
        if not isinstance(items, list) or not items:
            raise SegevalError(path, "must hold a non-empty JSON list", "list the class names in id order")
        if all(isinstance(i, str) for i in items):
            return ClassSet(tuple(items))
        if all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
            voids = tuple(_color(path, i.get("color")) for i in items if i.get("void") is True)
            items = [i for i in items if i.get("void") is not True]
            if not items:
                raise SegevalError(path, "lists only void entries", "list the classes too")
            names = tuple(i["name"] for i in items)
            if all("color" in i for i in items):
                return ClassSet(names, tuple(_color(path, i["color"]) for i in items), voids)
            return ClassSet(names)
        raise SegevalError(path, "must list names, or objects with a name (and a color)", "fix the classes file")
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    if path.suffix.lower() == ".csv" or ("," in first and "name" in (c.strip().lower() for c in first.split(","))):
        return _from_csv(path, text.lstrip("\ufeff"))
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if names and names[0] == "__ignore__":  # labelme: __ignore__ is -1 (the ignore region), _background_ is 0
        names = names[1:]
    if not names:
        raise SegevalError(path, "lists no class names", "write one class name per line")
    return ClassSet(names)
