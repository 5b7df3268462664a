"""Data for the learning job: datasets, loaders, splits, partitions and Poisson sampling.

Spec: spec/13-learning.md#data (informative: the learning job lives in ``reference/``).

Every random choice here is drawn from :class:`protocol.xof.Xof` with a
``learning.*`` tag, so a run is reproducible from its seed; nothing reads
Python's ``random`` or numpy's global generator. Only :func:`poisson_sample`
is privacy-relevant: it decides which records a node's update is computed
on, and the accountant's subsampling rate must be :func:`realized_rate` of
the rate asked for. The other draws (shuffles, Dirichlet proportions,
synthetic data) only shape the experiment, so they may use floating point.
"""

from __future__ import annotations

import csv
import gzip
import importlib.resources
import io
import math
import zipfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from protocol.errors import ParameterError
from protocol.xof import Seed, Tag, Xof

#: Float features, parameters and gradients.
F64 = npt.NDArray[np.float64]
#: Integer class labels and predictions.
I64 = npt.NDArray[np.int64]

#: Uniform doubles are built from this many random bits (a double's precision).
_DOUBLE_BITS = 53
#: Poisson sampling compares 64-bit words against ``floor(rate * 2^64)``.
_WORD = 1 << 64
_SUPPORTED_SUFFIXES = (".csv", ".csv.gz", ".npz")
_T = TypeVar("_T", bound=np.generic)


@dataclass(frozen=True)
class Dataset:
    """Labelled records: features ``x`` of shape ``(N, F)``, labels ``y`` of shape ``(N,)``.

    The arrays are stored as read-only views, so a ``Dataset`` cannot be
    changed through its fields. ``N`` may be 0 (an empty part); the loaders
    refuse files with fewer than 2 records.

    Pre-conditions:
        - ``x`` is a 2-D float64 array with at least one column, all entries finite;
        - ``y`` is a 1-D int64 array with ``len(y) == len(x)`` and entries in ``[0, classes)``;
        - ``classes >= 2``.

    Raises:
        ParameterError: if a pre-condition fails; the message names it and the bad value.
    """

    x: F64
    y: I64
    classes: int
    name: str

    def __post_init__(self) -> None:
        x, y = self.x, self.y
        if not isinstance(x, np.ndarray) or x.dtype != np.float64 or x.ndim != 2:
            raise ParameterError(f"{self.name}: x must be a 2-D float64 array; got {_describe(x)}")
        if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.ndim != 1:
            raise ParameterError(f"{self.name}: y must be a 1-D int64 array; got {_describe(y)}")
        if x.shape[0] != y.shape[0]:
            raise ParameterError(
                f"{self.name}: x has {x.shape[0]} rows but y has {y.shape[0]} labels"
            )
        if x.shape[1] < 1:
            raise ParameterError(f"{self.name}: x must have at least one feature column")
        if type(self.classes) is not int or self.classes < 2:
            raise ParameterError(f"{self.name}: classes must be an int >= 2; got {self.classes!r}")
        if not np.isfinite(x).all():
            row = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
            raise ParameterError(f"{self.name}: x has a non-finite value in row {row}")
        if y.size and (y.min() < 0 or y.max() >= self.classes):
            bad = int(y[(y < 0) | (y >= self.classes)][0])
            raise ParameterError(f"{self.name}: labels must be in [0, {self.classes}); got {bad}")
        object.__setattr__(self, "x", _read_only(x))
        object.__setattr__(self, "y", _read_only(y))

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def features(self) -> int:
        """The number of feature columns ``F``."""
        return int(self.x.shape[1])

    def subset(self, indices: npt.NDArray[np.intp], *, name: str | None = None) -> Dataset:
        """The records at ``indices`` (in that order), with the same ``classes``."""
        return Dataset(
            x=self.x[indices],
            y=self.y[indices],
            classes=self.classes,
            name=self.name if name is None else name,
        )


def _read_only(a: npt.NDArray[_T]) -> npt.NDArray[_T]:
    """A read-only view of ``a`` (``a`` itself is not changed)."""
    view = a.view()
    view.flags.writeable = False
    return view


def _describe(a: object) -> str:
    if isinstance(a, np.ndarray):
        return f"{a.dtype} array of shape {a.shape}"
    return type(a).__name__


# --------------------------------------------------------------------------- loaders


def load_digits() -> Dataset:
    """The embedded handwritten-digits data: 1797 8×8 images, 10 classes.

    The file is ``reference/learning/data/digits.csv.gz`` (see the README
    there): 64 pixel counts in ``0..16`` then the label, no header. Features
    are divided by 16, so they lie in ``[0, 1]``.

    Raises:
        ParameterError: if the embedded file is damaged (it is not, unless the install is).
    """
    resource = importlib.resources.files("reference.learning").joinpath("data/digits.csv.gz")
    with resource.open("rb") as raw, gzip.open(raw, "rt", encoding="ascii") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != 65:
        raise ParameterError(f"embedded digits data: expected 65 columns; got {table.shape}")
    return Dataset(
        x=table[:, :64] / 16.0,
        y=table[:, 64].astype(np.int64),
        classes=10,
        name="digits",
    )


def load_file(path: Path, *, label: str = "label") -> Dataset:
    """A user's dataset from a CSV or NPZ file, with every feature scaled to ``[0, 1]``.

    - CSV (``.csv`` or ``.csv.gz``): a header row is required. The column
      named ``label`` holds the class labels; every other column is a
      numeric feature. Blank lines are skipped.
    - NPZ (``.npz``): arrays ``x`` (or ``X``) of shape ``(N, F)`` and ``y``
      of shape ``(N,)``; the ``label`` argument does not apply.

    Labels: if every label is an integer (``"3"``, ``-1``), the distinct
    values are numbered ``0..K-1`` in increasing numeric order, so labels
    that are already ``0..K-1`` are unchanged; otherwise they are treated
    as strings and numbered in sorted string order.

    Features are not standardized: each column is mapped affinely to
    ``[0, 1]`` by its minimum and maximum over the whole file,
    ``(v - min) / (max - min)``, and a constant column becomes all zeros.
    (The learning rate and clipping norm of the job are tuned for features
    in ``[0, 1]``, like the digits.) The dataset's name is the file's stem.

    Raises:
        ParameterError: for a missing file, an unknown extension, an empty
            file, a missing label column (the message lists the columns), a
            non-numeric, empty or non-finite cell (naming line and column),
            a row whose length differs from the header's, fewer than 2
            records, or fewer than 2 distinct labels.
    """
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"data file {path} does not exist (or is not a file)")
    lower = path.name.lower()
    if lower.endswith(".npz"):
        x, raw_labels = _read_npz(path)
    elif lower.endswith((".csv", ".csv.gz")):
        x, raw_labels = _read_csv(path, label=label)
    else:
        raise ParameterError(
            f"data file {path}: unknown extension; expected one of {', '.join(_SUPPORTED_SUFFIXES)}"
        )
    if x.shape[0] < 2:
        raise ParameterError(f"data file {path}: needs at least 2 records; got {x.shape[0]}")
    y, classes = _encode_labels(raw_labels, path=path)
    stem = path.name[: -len(".csv.gz")] if lower.endswith(".csv.gz") else path.stem
    return Dataset(x=_unit_scale(x), y=y, classes=classes, name=stem)


def _read_csv(path: Path, *, label: str) -> tuple[F64, list[str]]:
    """Features (unscaled) and the raw label strings of a CSV file with a header."""
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
                text = f.read()
        else:
            text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise ParameterError(f"data file {path}: cannot be read as UTF-8 text ({e})") from e
    rows = [(n, row) for n, row in enumerate(csv.reader(io.StringIO(text)), start=1) if row]
    if not rows:
        raise ParameterError(f"data file {path} is empty; expected a header row then records")
    _, header = rows[0]
    header = [h.strip() for h in header]
    if label not in header:
        raise ParameterError(
            f"data file {path}: no label column {label!r}; the columns are "
            f"{', '.join(repr(h) for h in header)} (choose one with the label option)"
        )
    if header.count(label) > 1:
        raise ParameterError(f"data file {path}: the label column {label!r} appears twice")
    if len(header) < 2:
        raise ParameterError(f"data file {path}: no feature columns besides {label!r}")
    label_at = header.index(label)
    feature_cols = [c for c in range(len(header)) if c != label_at]
    x = np.empty((len(rows) - 1, len(feature_cols)), dtype=np.float64)
    labels: list[str] = []
    for r, (line, row) in enumerate(rows[1:]):
        if len(row) != len(header):
            raise ParameterError(
                f"data file {path}, line {line}: {len(row)} cells; "
                f"the header has {len(header)} columns"
            )
        labels.append(row[label_at].strip())
        for j, c in enumerate(feature_cols):
            cell = row[c].strip()
            try:
                value = float(cell)
            except ValueError:
                raise ParameterError(
                    f"data file {path}, line {line}, column {header[c]!r}: {cell!r} is not a number"
                ) from None
            if not math.isfinite(value):
                raise ParameterError(
                    f"data file {path}, line {line}, column {header[c]!r}: {cell!r} is not finite"
                )
            x[r, j] = value
    return x, labels


def _read_npz(path: Path) -> tuple[F64, list[str]]:
    """Features (unscaled) and the labels, as strings, of an NPZ archive."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ParameterError(f"data file {path}: not a readable NPZ archive ({e})") from e
    key = "x" if "x" in arrays else "X" if "X" in arrays else None
    if key is None or "y" not in arrays:
        raise ParameterError(
            f"data file {path}: expected arrays 'x' (or 'X') and 'y'; "
            f"found {', '.join(repr(k) for k in sorted(arrays)) or 'none'}"
        )
    x, y = arrays[key], arrays["y"]
    if x.ndim != 2 or x.shape[1] < 1 or x.dtype.kind not in "biuf":
        raise ParameterError(
            f"data file {path}: {key!r} must be a numeric array of shape (N, F); got {_describe(x)}"
        )
    if y.ndim != 1 or y.dtype.kind not in "biufUS":
        raise ParameterError(
            f"data file {path}: 'y' must be a 1-D array of numbers or strings; got {_describe(y)}"
        )
    if y.shape[0] != x.shape[0]:
        raise ParameterError(
            f"data file {path}: {key!r} has {x.shape[0]} rows but 'y' has {y.shape[0]} labels"
        )
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        row, col = (int(v) for v in np.argwhere(~np.isfinite(x))[0])
        raise ParameterError(
            f"data file {path}: {key!r}[{row}, {col}] is {x[row, col]}, not a finite number"
        )
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or not (y == np.round(y)).all():
            bad = y[~np.isfinite(y) | (y != np.round(y))][0]
            raise ParameterError(f"data file {path}: label {bad} in 'y' is not an integer")
        labels = [str(int(v)) for v in y]
    elif y.dtype.kind == "S":
        labels = [v.decode("utf-8", errors="replace") for v in y.tolist()]
    else:
        labels = [str(v) for v in y.tolist()]
    return x, labels


def _encode_labels(raw: list[str], *, path: Path) -> tuple[I64, int]:
    """Labels as ``0..K-1`` (numeric order if all are integers, else string order), and ``K``."""
    try:
        ints = [int(v) for v in raw]
    except ValueError:
        keys, distinct = raw, sorted(set(raw))
    else:  # "1" and "01" are the same class
        keys, distinct = [str(v) for v in ints], [str(v) for v in sorted(set(ints))]
    if len(distinct) < 2:
        raise ParameterError(
            f"data file {path}: needs at least 2 distinct labels; got {len(distinct)} "
            f"({', '.join(repr(v) for v in distinct)})"
        )
    code = {v: i for i, v in enumerate(distinct)}
    return np.array([code[v] for v in keys], dtype=np.int64), len(distinct)


def _unit_scale(x: F64) -> F64:
    """Each column mapped to ``[0, 1]`` by its min and max; constant columns become 0."""
    low = x.min(axis=0)
    span = x.max(axis=0) - low
    constant = span == 0
    out: F64 = (x - low) / np.where(constant, 1.0, span)
    out[:, constant] = 0.0
    # Guard against rounding just outside [0, 1] (e.g. a huge span).
    np.clip(out, 0.0, 1.0, out=out)
    return out


# --------------------------------------------------------------------------- randomness helpers


def _permutation(xof: Xof, n: int) -> npt.NDArray[np.intp]:
    """A uniform permutation of ``0..n-1`` by Fisher–Yates (Durstenfeld), drawn from ``xof``.

    For ``i = n-1, …, 1``: ``j = xof.uniform_int(i + 1)``, swap positions ``i`` and ``j``.
    """
    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        j = xof.uniform_int(i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return np.array(perm, dtype=np.intp)


def _uniform_doubles(xof: Xof, count: int) -> F64:
    """``count`` doubles uniform on the grid ``(k + 1/2) / 2^53``, ``k < 2^53``: in ``(0, 1)``.

    Never 0 or 1, so logarithms of them and of ``1 - u`` are finite.
    """
    k = xof.uniform_ints(1 << _DOUBLE_BITS, count=count)
    return (k.astype(np.float64) + 0.5) * 2.0**-_DOUBLE_BITS


def _standard_normals(xof: Xof, count: int) -> F64:
    """``count`` standard normal variates by the Box–Muller transform of XOF uniforms.

    ``z0 = sqrt(-2 ln u1) cos(2π u2)``, ``z1 = sqrt(-2 ln u1) sin(2π u2)``
    (Box and Muller, Ann. Math. Statist. 29(2), 1958).
    """
    pairs = (count + 1) // 2
    u = _uniform_doubles(xof, 2 * pairs).reshape(pairs, 2)
    radius = np.sqrt(-2.0 * np.log(u[:, 0]))
    angle = 2.0 * np.pi * u[:, 1]
    z = np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])
    return z[:count]


def _log_gamma_variate(xof: Xof, alpha: float) -> float:
    """``log G`` for one ``G ~ Gamma(alpha, 1)``, by Marsaglia–Tsang.

    Marsaglia and Tsang, "A simple method for generating gamma variables",
    ACM TOMS 26(3), 2000, section 3 (``alpha >= 1``): with ``d = alpha - 1/3``
    and ``c = 1 / sqrt(9d)``, draw ``z ~ N(0, 1)``, ``v = (1 + cz)^3``, and
    accept ``d·v`` when ``v > 0`` and ``ln u < z²/2 + d - d·v + d·ln v``.
    For ``alpha < 1`` (their section 6): ``G = G' · U^(1/alpha)`` with
    ``G' ~ Gamma(alpha + 1)``; in logs, so that small ``alpha`` cannot
    underflow to 0.
    """
    boost = 0.0
    if alpha < 1.0:
        boost = math.log(float(_uniform_doubles(xof, 1)[0])) / alpha
        alpha += 1.0
    d = alpha - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        z = float(_standard_normals(xof, 1)[0])
        v = (1.0 + c * z) ** 3
        if v <= 0.0:
            continue
        u = float(_uniform_doubles(xof, 1)[0])
        if math.log(u) < 0.5 * z * z + d - d * v + d * math.log(v):
            return math.log(d) + math.log(v) + boost


def _dirichlet(xof: Xof, *, alpha: float, k: int) -> F64:
    """Proportions ``p ~ Dirichlet(alpha, …, alpha)`` over ``k`` parts: normalized gammas.

    Normalized in log space (``exp(l - logsumexp(l))``), so tiny gammas are harmless.
    """
    logs = np.array([_log_gamma_variate(xof, alpha) for _ in range(k)], dtype=np.float64)
    shifted: F64 = np.exp(logs - logs.max())
    total = float(shifted.sum())
    result: F64 = shifted / total
    return result


# --------------------------------------------------------------------------- split, partition


def split(data: Dataset, *, test_fraction: float, seed: Seed) -> tuple[Dataset, Dataset]:
    """A deterministic (train, test) split after a Fisher–Yates shuffle.

    The shuffle draws from ``Xof(seed, Tag("learning.split"))``. The test
    part has ``round(test_fraction · N)`` records, moved into ``[1, N - 1]``
    so that both parts are non-empty; the train part has the rest. Not
    stratified. The parts are named ``"<name>/train"`` and ``"<name>/test"``.

    Pre-conditions:
        - ``0 < test_fraction < 1``;
        - ``len(data) >= 2``.

    Raises:
        ParameterError: if a pre-condition fails.
    """
    if not (isinstance(test_fraction, float | int) and 0.0 < test_fraction < 1.0):
        raise ParameterError(f"test_fraction must be in (0, 1); got {test_fraction!r}")
    n = len(data)
    if n < 2:
        raise ParameterError(f"cannot split {data.name}: needs at least 2 records; got {n}")
    n_test = min(max(round(test_fraction * n), 1), n - 1)
    perm = _permutation(Xof(seed, Tag("learning.split")), n)
    return (
        data.subset(np.sort(perm[n_test:]), name=f"{data.name}/train"),
        data.subset(np.sort(perm[:n_test]), name=f"{data.name}/test"),
    )


@dataclass(frozen=True)
class PartitionScheme:
    """A parsed ``--partition`` value: ``"iid"`` or ``"dirichlet:ALPHA"``.

    ``alpha`` is ``None`` for ``iid`` and a finite float ``> 0`` otherwise.
    """

    kind: str
    alpha: float | None = None

    @classmethod
    def parse(cls, scheme: str) -> PartitionScheme:
        """Parse ``"iid"`` or ``"dirichlet:ALPHA"`` (``ALPHA`` a finite positive float).

        Raises:
            ParameterError: naming the bad scheme string and the accepted forms.
        """
        expected = "expected 'iid' or 'dirichlet:ALPHA' with ALPHA a positive number"
        if not isinstance(scheme, str):
            raise ParameterError(f"partition scheme must be a string; got {scheme!r}")
        if scheme == "iid":
            return cls("iid")
        kind, sep, value = scheme.partition(":")
        if kind != "dirichlet" or not sep:
            raise ParameterError(f"unknown partition scheme {scheme!r}; {expected}")
        try:
            alpha = float(value)
        except ValueError:
            raise ParameterError(
                f"partition scheme {scheme!r}: ALPHA {value!r} is not a number; {expected}"
            ) from None
        if not (math.isfinite(alpha) and alpha > 0.0):
            raise ParameterError(
                f"partition scheme {scheme!r}: ALPHA must be finite and > 0; got {alpha}"
            )
        return cls("dirichlet", alpha)


def partition(data: Dataset, *, nodes: int, scheme: str, seed: Seed) -> list[Dataset]:
    """Deal the records of ``data`` to ``nodes`` nodes; every record goes to exactly one node.

    - ``"iid"``: shuffle (Fisher–Yates from ``Xof(seed, Tag("learning.partition.iid"))``)
      and deal round-robin, so part sizes differ by at most 1.
    - ``"dirichlet:ALPHA"``: for each class ``c``, shuffle its records
      (``Tag("learning.partition.shuffle", (c,))``), draw proportions
      ``p ~ Dirichlet(ALPHA, …, ALPHA)`` over the nodes
      (``Tag("learning.partition.dirichlet", (c,))``) and give node ``i``
      the slice between ``floor(n_c · (p_1 + … + p_{i-1}))`` and
      ``floor(n_c · (p_1 + … + p_i))``. Small ``ALPHA`` gives very skewed
      parts. Then, while a node is empty, the last record of the largest
      part (lowest index on ties) moves to the empty node of lowest index.

    Part ``i`` is named ``"<name>/node<i>"``; its records keep their order in ``data``.

    Pre-conditions:
        - ``1 <= nodes <= len(data)``;
        - ``scheme`` parses (:meth:`PartitionScheme.parse`).

    Raises:
        ParameterError: if a pre-condition fails.
    """
    parsed = PartitionScheme.parse(scheme)
    n = len(data)
    if type(nodes) is not int or not 1 <= nodes <= n:
        raise ParameterError(
            f"nodes must be an int in [1, {n}] (the number of records of {data.name}); "
            f"got {nodes!r}"
        )
    parts: list[list[int]]
    if parsed.alpha is None:
        perm = _permutation(Xof(seed, Tag("learning.partition.iid")), n)
        parts = [perm[i::nodes].tolist() for i in range(nodes)]
    else:
        parts = [[] for _ in range(nodes)]
        for c in range(data.classes):
            members = np.flatnonzero(data.y == c)
            if members.size == 0:
                continue
            order = _permutation(Xof(seed, Tag("learning.partition.shuffle", (c,))), members.size)
            shuffled = members[order]
            p = _dirichlet(
                Xof(seed, Tag("learning.partition.dirichlet", (c,))), alpha=parsed.alpha, k=nodes
            )
            cuts = np.floor(np.cumsum(p) * members.size).astype(np.intp)
            cuts[-1] = members.size  # the cumulative sum may round just below 1
            start = 0
            for i, cut in enumerate(cuts.tolist()):
                end = max(cut, start)
                parts[i].extend(shuffled[start:end].tolist())
                start = end
        _fill_empty_parts(parts)
    return [
        data.subset(np.sort(np.array(part, dtype=np.intp)), name=f"{data.name}/node{i}")
        for i, part in enumerate(parts)
    ]


def _fill_empty_parts(parts: list[list[int]]) -> None:
    """Move records from the largest part to empty parts until none is empty (in place)."""
    for part in parts:
        if not part:
            largest = max(range(len(parts)), key=lambda k: (len(parts[k]), -k))
            assert len(parts[largest]) >= 2, "nodes <= records leaves a part of size >= 2"
            part.append(parts[largest].pop())


# --------------------------------------------------------------------------- synthetic data


def synthetic(*, records: int, features: int, classes: int, seed: Seed) -> Dataset:
    """Gaussian blobs: a linearly separable-ish dataset of any size, for the 100-node runs.

    Labels are balanced: ``0, 1, …, classes-1, 0, 1, …`` shuffled by
    Fisher–Yates (``Tag("learning.synthetic.labels")``). Class ``c`` has
    mean ``mu_c ~ N(0, I_F)`` (``Tag("learning.synthetic.means")``), and a
    record of class ``c`` is ``mu_c + z`` with ``z ~ N(0, I_F)``
    (``Tag("learning.synthetic.noise")``); normals come from Box–Muller on
    XOF uniforms. Two class means are ``sqrt(2F)`` apart on average, so with
    unit noise the classes overlap little once ``F``
    is more than a few. Finally every feature is scaled to ``[0, 1]`` by its
    min and max, as in :func:`load_file`. The name is ``"synthetic"``.

    Pre-conditions:
        - ``records >= 2``, ``features >= 1``, ``2 <= classes <= records``.

    Raises:
        ParameterError: if a pre-condition fails.
    """
    for label, value, low in (("records", records, 2), ("features", features, 1)):
        if type(value) is not int or value < low:
            raise ParameterError(f"{label} must be an int >= {low}; got {value!r}")
    if type(classes) is not int or not 2 <= classes <= records:
        raise ParameterError(f"classes must be an int in [2, records={records}]; got {classes!r}")
    order = _permutation(Xof(seed, Tag("learning.synthetic.labels")), records)
    y = (order % classes).astype(np.int64)
    means = _standard_normals(Xof(seed, Tag("learning.synthetic.means")), classes * features)
    noise = _standard_normals(Xof(seed, Tag("learning.synthetic.noise")), records * features)
    x = means.reshape(classes, features)[y] + noise.reshape(records, features)
    return Dataset(x=_unit_scale(x), y=y, classes=classes, name="synthetic")


# --------------------------------------------------------------------------- Poisson sampling


def poisson_threshold(rate: float) -> int:
    """``floor(rate · 2^64)``, computed exactly (``rate`` is read as the exact binary fraction).

    Pre-conditions:
        - ``rate`` is a float in ``[0, 1]``.

    Raises:
        ParameterError: if ``rate`` is not a number in ``[0, 1]``.
    """
    if isinstance(rate, bool) or not isinstance(rate, float | int) or not 0 <= rate <= 1:
        raise ParameterError(f"sampling rate must be a number in [0, 1]; got {rate!r}")
    return math.floor(Fraction(rate) * _WORD)


def realized_rate(rate: float) -> float:
    """The inclusion probability :func:`poisson_sample` actually uses: ``floor(rate·2^64)/2^64``.

    It is ``<= rate``, and equal to ``rate`` whenever ``rate >= 2^-12`` (then
    ``rate · 2^64`` is an integer, as a double's last bit is worth at least
    ``2^-64``). The result is exact as a double: the threshold is either
    ``rate · 2^64`` itself or below ``2^52``. The privacy accountant must
    use this value as the subsampling probability.

    Raises:
        ParameterError: if ``rate`` is not a number in ``[0, 1]``.
    """
    return float(Fraction(poisson_threshold(rate), _WORD))


def _keep(words: npt.NDArray[np.uint64], threshold: int) -> npt.NDArray[np.bool_]:
    """``words[j] < threshold`` for each ``j``, exactly, for any ``threshold`` in ``[0, 2^64]``.

    ``threshold == 2^64`` does not fit in a uint64; then every word is kept.
    """
    if not 0 <= threshold <= _WORD:
        raise ParameterError(f"threshold must be in [0, 2^64]; got {threshold}")
    if threshold == _WORD:
        return np.ones(words.shape, dtype=np.bool_)
    return words < np.uint64(threshold)


def poisson_sample(n: int, *, rate: float, seed: Seed, tag: Tag) -> npt.NDArray[np.intp]:
    """The indices (increasing) of the records kept by ``n`` independent Bernoulli trials.

    PRIVACY-RELEVANT: this is the Poisson subsampling that privacy
    amplification by sampling assumes (each record included independently
    with the same probability; Zhu and Wang, "Poisson subsampled Rényi
    differential privacy", ICML 2019). It uses integers only: with
    ``u_j`` the ``j``-th 64-bit word of
    ``Xof(seed, tag).uniform_ints(2^64, count=n)`` (eight stream bytes,
    little-endian, no rejection), record ``j`` is kept iff
    ``u_j < floor(rate · 2^64)``. Since ``u_j`` is uniform on ``[0, 2^64)``,
    the inclusion probability is exactly :func:`realized_rate` ``(rate)``,
    which the accountant must use. Rate 0 keeps nothing, rate 1 keeps all.

    ``tag`` should name the node and round (for example
    ``Tag("learning.sample", (node, round))``) so that no two draws share a stream.

    Pre-conditions:
        - ``n >= 0``; ``rate`` a number in ``[0, 1]``.

    Raises:
        ParameterError: if a pre-condition fails.
    """
    if type(n) is not int or n < 0:
        raise ParameterError(f"n must be an int >= 0; got {n!r}")
    threshold = poisson_threshold(rate)
    words = Xof(seed, tag).uniform_ints(_WORD, count=n)
    return np.flatnonzero(_keep(words, threshold))
