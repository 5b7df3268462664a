"""The learning building blocks: data, splits, partitions, Poisson sampling, models, clipping.

Spec: none (``reference/learning``, issue 6).

Oracles: central finite differences for the gradients; Python integers
for the Poisson sampling threshold; exact bookkeeping (every record once)
for splits and partitions; a Hoeffding bound, with its false-failure
probability computed, for the sampling rate. Test inputs come from the XOF
(``Tag("test.learning.*")``) or from Hypothesis, never from unseeded
randomness.
"""

from __future__ import annotations

import functools
import gzip
import math
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from protocol.errors import ParameterError
from protocol.xof import Tag, Xof, as_seed, derive_seed
from reference.learning.data import (
    Dataset,
    _keep,
    load_digits,
    load_file,
    partition,
    poisson_sample,
    poisson_threshold,
    realized_rate,
    split,
    synthetic,
)
from reference.learning.models import (
    F64,
    I64,
    MODELS,
    Model,
    accuracy,
    clip_rows,
    make_model,
    mlp,
    softmax_regression,
)
from tests.strategies import seeds

SEED = as_seed(bytes(32))
OTHER_SEED = derive_seed(SEED, Tag("test.learning.other"))


def uniforms(seed: bytes, purpose: str, count: int, *, low: float, high: float) -> F64:
    """``count`` doubles uniform on ``[low, high)``, from ``Xof(seed, Tag(purpose))``."""
    k = Xof(as_seed(seed), Tag(purpose)).uniform_ints(1 << 53, count=count)
    return low + (high - low) * (k.astype(np.float64) * 2.0**-53)


def small_model(name: str, features: int, classes: int) -> Model:
    """The model ``name``, with a hidden layer small enough for finite differences."""
    return (
        mlp(features, classes, hidden=3) if name == "mlp" else make_model(name, features, classes)
    )


def random_problem(
    seed: bytes, name: str, *, batch: int, features: int, classes: int
) -> tuple[Model, F64, F64, I64]:
    """A model, parameters in ``[-2, 2)``, features in ``[0, 1)`` and labels, all from ``seed``."""
    model = small_model(name, features, classes)
    params = uniforms(seed, "test.learning.params", model.size, low=-2.0, high=2.0)
    x = uniforms(seed, "test.learning.x", batch * features, low=0.0, high=1.0)
    y = Xof(as_seed(seed), Tag("test.learning.y")).uniform_ints(classes, count=batch)
    return model, params, x.reshape(batch, features), y.astype(np.int64)


def central_differences(f: Callable[[F64], float], params: F64, h: float) -> F64:
    """``(f(θ + h e_k) - f(θ - h e_k)) / 2h`` for every coordinate ``k``."""
    out = np.empty_like(params)
    for k in range(params.size):
        step = np.zeros_like(params)
        step[k] = h
        out[k] = (f(params + step) - f(params - step)) / (2.0 * h)
    return out


# Finite-difference tolerance. The central difference with step h has truncation error
# h²/6 · |l'''| and rounding error about eps · |l| / h. Here the parameters lie in [-2, 2],
# the features in [0, 1] and there are at most 4 features, 3 hidden units and 4 classes, so
# |l| <= ~40 and the third derivatives are O(10): with h = 1e-5 the error is at most
# ~2e-10 + 1e-9, i.e. below 1e-8. A tolerance of 1e-6 (absolute, plus 1e-6 relative)
# leaves a 100x margin yet catches any wrong term (those are O(0.01) or larger).
FD_STEP = 1e-5
FD_TOL = 1e-6

problems = st.tuples(
    seeds,
    st.sampled_from(MODELS),
    st.integers(1, 5),  # batch
    st.integers(1, 4),  # features
    st.integers(2, 4),  # classes
)


# --------------------------------------------------------------------------- gradients


@given(problems)
def test_per_example_gradient_matches_finite_differences(
    problem: tuple[bytes, str, int, int, int],
) -> None:
    seed, name, batch, features, classes = problem
    model, params, x, y = random_problem(
        seed, name, batch=batch, features=features, classes=classes
    )
    grads = model.per_example_gradients(params, x, y)
    assert grads.shape == (batch, model.size)
    for i in range(batch):
        loss_i = functools.partial(model.loss, x=x[i : i + 1], y=y[i : i + 1])
        expected = central_differences(loss_i, params, FD_STEP)
        np.testing.assert_allclose(grads[i], expected, rtol=FD_TOL, atol=FD_TOL)


@given(problems)
def test_per_example_gradients_sum_to_the_gradient_of_the_summed_loss(
    problem: tuple[bytes, str, int, int, int],
) -> None:
    seed, name, batch, features, classes = problem
    model, params, x, y = random_problem(
        seed, name, batch=batch, features=features, classes=classes
    )
    summed = model.per_example_gradients(params, x, y).sum(axis=0)
    # The summed loss is batch × the mean loss; its error bound scales by batch as well.
    expected = batch * central_differences(lambda p: model.loss(p, x, y), params, FD_STEP)
    np.testing.assert_allclose(summed, expected, rtol=FD_TOL, atol=batch * FD_TOL)


@pytest.mark.parametrize("name", MODELS)
def test_loss_and_gradients_stay_finite_for_huge_logits(name: str) -> None:
    model, params, x, y = random_problem(bytes(32), name, batch=4, features=3, classes=3)
    huge = 1e4 * params
    assert math.isfinite(model.loss(huge, x, y))
    grads = model.per_example_gradients(huge, x, y)
    assert np.isfinite(grads).all()
    # Each per-example gradient of the output layer is softmax - onehot: its entries sum to 0.
    np.testing.assert_allclose(grads[:, -3:].sum(axis=1), 0.0, atol=1e-12)


def test_models_check_shapes_and_names() -> None:
    model = softmax_regression(3, 2)
    assert (model.name, model.size) == ("softmax", 3 * 2 + 2)
    assert (mlp(3, 2, hidden=4).name, mlp(3, 2, hidden=4).size) == ("mlp", 3 * 4 + 4 + 4 * 2 + 2)
    x, y = np.zeros((2, 3)), np.array([0, 1], dtype=np.int64)
    with pytest.raises(ParameterError, match=r"params must have shape \(8,\); got \(7,\)"):
        model.logits(np.zeros(7), x)
    with pytest.raises(ParameterError, match=r"x must have shape \(B, 3\); got \(2, 4\)"):
        model.logits(np.zeros(8), np.zeros((2, 4)))
    with pytest.raises(ParameterError, match=r"labels must be in \[0, 2\); got 0..2"):
        model.loss(np.zeros(8), x, np.array([0, 2], dtype=np.int64))
    with pytest.raises(ParameterError, match="empty batch"):
        model.loss(np.zeros(8), x[:0], y[:0])
    with pytest.raises(ParameterError, match="unknown model 'cnn'; expected one of softmax, mlp"):
        make_model("cnn", 3, 2)
    with pytest.raises(ParameterError, match="classes must be an int >= 2; got 1"):
        make_model("softmax", 3, 1)
    with pytest.raises(ParameterError, match="hidden must be an int >= 1; got 0"):
        mlp(3, 2, hidden=0)


def test_mlp_init_is_seeded_and_glorot_bounded() -> None:
    model = mlp(64, 10, hidden=32)
    params = model.init(SEED)
    assert params.shape == (model.size,)
    np.testing.assert_array_equal(params, model.init(SEED))
    assert not np.array_equal(params, model.init(OTHER_SEED))
    w1, b1 = params[: 64 * 32], params[64 * 32 : 64 * 32 + 32]
    w2, b2 = params[64 * 32 + 32 : -10], params[-10:]
    assert np.abs(w1).max() <= math.sqrt(6 / (64 + 32))
    assert np.abs(w2).max() <= math.sqrt(6 / (32 + 10))
    assert not b1.any() and not b2.any()
    assert not softmax_regression(64, 10).init(SEED).any()


# --------------------------------------------------------------------------- clipping

gradient_rows = st.tuples(st.integers(0, 6), st.integers(1, 8)).flatmap(
    lambda shape: hnp.arrays(
        np.float64,
        shape,
        elements=st.one_of(
            st.just(0.0), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
        ),
    )
)


@given(gradient_rows, st.floats(1e-3, 1e3))
@example(np.array([[3.0, 4.0], [0.0, 0.0], [0.3, 0.4], [1e6, -1e6]]), 5.0)
def test_clipping_bounds_every_row_and_keeps_small_rows(grads: F64, clip: float) -> None:
    before = grads.copy()
    out = clip_rows(grads, clip)
    np.testing.assert_array_equal(grads, before)  # the input is not modified
    norms, new_norms = np.linalg.norm(grads, axis=1), np.linalg.norm(out, axis=1)
    assert (new_norms <= clip).all()
    small = norms <= clip
    np.testing.assert_array_equal(out[small], grads[small])  # bit for bit, zero rows too
    # A long row keeps its direction and ends (within rounding) on the sphere of radius clip.
    np.testing.assert_allclose(new_norms[~small], clip, rtol=1e-12)
    # Direction: rescaled back, each long row is its input up to relative rounding error
    # (measured against the row's norm, since entries far below it may underflow).
    back = out[~small] * (norms[~small] / clip)[:, None]
    assert (np.linalg.norm(back - grads[~small], axis=1) <= 1e-12 * norms[~small]).all()


def test_clipping_rejects_bad_input() -> None:
    with pytest.raises(ParameterError, match="clip must be a finite number > 0; got 0"):
        clip_rows(np.ones((1, 2)), 0)
    with pytest.raises(ParameterError, match="got nan"):
        clip_rows(np.ones((1, 2)), math.nan)
    with pytest.raises(ParameterError, match=r"2-D array \(B, size\); got shape \(2,\)"):
        clip_rows(np.ones(2), 1.0)
    with pytest.raises(ParameterError, match="row 1 of grads has a non-finite entry"):
        clip_rows(np.array([[1.0], [math.inf]]), 1.0)


# --------------------------------------------------------------------------- data sets


def test_digits_are_embedded_and_well_formed() -> None:
    digits = load_digits()
    assert (len(digits), digits.x.shape, digits.classes, digits.name) == (
        1797,
        (1797, 64),
        10,
        "digits",
    )
    assert digits.x.dtype == np.float64 and digits.y.dtype == np.int64
    assert digits.x.min() == 0.0 and digits.x.max() == 1.0
    # Pixel counts 0..16 divided by 16: every value is a multiple of 1/16.
    np.testing.assert_array_equal(digits.x * 16, np.round(digits.x * 16))
    counts = np.bincount(digits.y, minlength=10)
    assert counts.shape == (10,) and counts.min() >= 170 and counts.sum() == 1797
    assert not digits.x.flags.writeable  # a frozen Dataset's arrays are read-only


def test_dataset_rejects_inconsistent_arrays() -> None:
    x, y = np.zeros((3, 2)), np.array([0, 1, 1], dtype=np.int64)
    with pytest.raises(ParameterError, match="x has 2 rows but y has 3 labels"):
        Dataset(x=x[:2], y=y, classes=2, name="d")
    with pytest.raises(ParameterError, match=r"labels must be in \[0, 2\); got 2"):
        Dataset(x=x, y=np.array([0, 2, 1], dtype=np.int64), classes=2, name="d")
    with pytest.raises(ParameterError, match="non-finite value in row 1"):
        Dataset(x=np.array([[0.0, 0.0], [0.0, math.nan], [0.0, 0.0]]), y=y, classes=2, name="d")
    with pytest.raises(ParameterError, match="x must be a 2-D float64 array; got int64"):
        Dataset(x=np.zeros((3, 2), dtype=np.int64), y=y, classes=2, name="d")
    with pytest.raises(ParameterError, match="classes must be an int >= 2; got 1"):
        Dataset(x=x, y=np.zeros(3, dtype=np.int64), classes=1, name="d")


def _npz(**arrays: Any) -> Callable[[Path], object]:
    return lambda path: np.savez(path, **arrays)


def _text(content: str) -> Callable[[Path], object]:
    return lambda path: path.write_text(content, encoding="utf-8")


BAD_FILES: list[tuple[str, Callable[[Path], object] | None, list[str]]] = [
    ("absent.csv", None, ["does not exist"]),
    ("data.txt", _text("a,label\n1,x\n2,y\n"), ["unknown extension", ".csv, .csv.gz, .npz"]),
    ("empty.csv", _text(""), ["is empty", "header"]),
    ("blank.csv", _text("\n\n"), ["is empty"]),
    (
        "nolabel.csv",
        _text("a,b,class\n1,2,x\n"),
        ["no label column 'label'", "'a', 'b', 'class'"],
    ),
    ("onlylabel.csv", _text("label\nx\ny\n"), ["no feature columns"]),
    (
        "word.csv",
        _text("a,label\n1,x\nfoo,y\n"),
        ["line 3", "column 'a'", "'foo' is not a number"],
    ),
    ("hole.csv", _text("a,b,label\n1,,x\n2,3,y\n"), ["line 2", "column 'b'", "'' is not a number"]),
    ("ragged.csv", _text("a,b,label\n1,2,x\n1,y\n"), ["line 3", "2 cells", "3 columns"]),
    ("nan.csv", _text("a,label\n1,x\nnan,y\n"), ["line 3", "column 'a'", "not finite"]),
    ("inf.csv", _text("a,label\n-inf,x\n1,y\n"), ["line 2", "not finite"]),
    ("oneclass.csv", _text("a,label\n1,x\n2,x\n"), ["at least 2 distinct labels; got 1"]),
    ("onerow.csv", _text("a,label\n1,x\n"), ["at least 2 records; got 1"]),
    ("header.csv", _text("a,label\n"), ["at least 2 records; got 0"]),
    ("garbage.npz", _text("not a zip"), ["not a readable NPZ archive"]),
    (
        "noarrays.npz",
        _npz(a=np.zeros((2, 2)), b=np.zeros(2)),
        ["expected arrays 'x' (or 'X') and 'y'", "'a', 'b'"],
    ),
    (
        "lengths.npz",
        _npz(x=np.zeros((3, 2)), y=np.array([0, 1])),
        ["'x' has 3 rows but 'y' has 2 labels"],
    ),
    ("flat.npz", _npz(X=np.zeros(3), y=np.array([0, 1, 1])), ["'X' must be", "shape (N, F)"]),
    (
        "infnpz.npz",
        _npz(x=np.array([[0.0], [np.inf]]), y=np.array([0, 1])),
        ["'x'[1, 0] is inf"],
    ),
    (
        "fraction.npz",
        _npz(x=np.zeros((2, 1)), y=np.array([0.0, 0.5])),
        ["label 0.5 in 'y' is not an integer"],
    ),
    ("oneclass.npz", _npz(x=np.zeros((2, 1)), y=np.array([3, 3])), ["at least 2 distinct"]),
]


@pytest.mark.parametrize(
    ("filename", "write", "fragments"), BAD_FILES, ids=[case[0] for case in BAD_FILES]
)
def test_load_file_reports_bad_input_clearly(
    tmp_path: Path,
    filename: str,
    write: Callable[[Path], object] | None,
    fragments: list[str],
) -> None:
    path = tmp_path / filename
    if write is not None:
        write(path)
    with pytest.raises(ParameterError) as raised:
        load_file(path)
    message = str(raised.value)
    assert filename in message  # every message names the file ...
    for fragment in fragments:  # ... and the problem
        assert fragment in message


def test_load_file_reads_csv_and_npz(tmp_path: Path) -> None:
    raw = np.array([[2.0, 7.0, -1.0], [4.0, 7.0, 1.0], [3.0, 7.0, 0.0], [6.0, 7.0, 3.0]])
    names = ["dog", "cat", "dog", "emu"]
    # min/max scaling per column; the constant middle column becomes 0.
    expected_x = np.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.5], [0.25, 0.0, 0.25], [1.0, 0.0, 1.0]])
    expected_y = np.array([1, 0, 1, 2])  # cat < dog < emu

    csv_path = tmp_path / "animals.csv"
    lines = ["a, species ,b,c"] + [
        f"{r[0]},{n},{r[1]},{r[2]}" for r, n in zip(raw, names, strict=True)
    ]
    csv_path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    from_csv = load_file(csv_path, label="species")

    gz_path = tmp_path / "animals.csv.gz"
    gz_path.write_bytes(gzip.compress(csv_path.read_bytes()))
    from_gz = load_file(gz_path, label="species")

    npz_path = tmp_path / "animals.npz"
    np.savez(npz_path, X=raw, y=np.array(names))
    from_npz = load_file(npz_path)

    for data in (from_csv, from_gz, from_npz):
        assert (data.name, data.classes, len(data)) == ("animals", 3, 4)
        np.testing.assert_allclose(data.x, expected_x, rtol=0, atol=1e-15)
        np.testing.assert_array_equal(data.y, expected_y)

    # Integer labels are numbered in numeric order ("10" after "2"), equal spellings merge.
    ints = tmp_path / "ints.csv"
    ints.write_text("label,f\n10,1\n2,2\n02,3\n-1,4\n", encoding="utf-8")
    np.testing.assert_array_equal(load_file(ints).y, [2, 1, 1, 0])
    npz_ints = tmp_path / "ints.npz"
    np.savez(npz_ints, x=np.arange(4.0)[:, None], y=np.array([10, 2, 2, -1]))
    np.testing.assert_array_equal(load_file(npz_ints).y, [2, 1, 1, 0])


# --------------------------------------------------------------------------- split, partition


def indexed(n: int, classes: int) -> Dataset:
    """``n`` records whose only feature is the record's index, so parts can be traced back."""
    return Dataset(
        x=np.arange(n, dtype=np.float64)[:, None],
        y=(np.arange(n) * 7 % classes).astype(np.int64),
        classes=classes,
        name="indexed",
    )


def record_ids(parts: list[Dataset]) -> npt.NDArray[np.int64]:
    return np.concatenate([p.x[:, 0] for p in parts]).astype(np.int64)


SCHEMES = ("iid", "dirichlet:0.05", "dirichlet:1", "dirichlet:100")


@given(
    seed=seeds,
    shape=st.integers(1, 20).flatmap(lambda k: st.tuples(st.just(k), st.integers(max(k, 2), 120))),
    classes=st.integers(2, 5),
    scheme=st.sampled_from(SCHEMES),
    test_fraction=st.floats(0.001, 0.999),
)
def test_split_and_partition_are_deterministic_and_cover_the_data(
    seed: bytes, shape: tuple[int, int], classes: int, scheme: str, test_fraction: float
) -> None:
    nodes, n = shape
    data = indexed(n, classes)
    s = as_seed(seed)

    train, test = split(data, test_fraction=test_fraction, seed=s)
    assert len(train) >= 1 and len(test) >= 1
    assert len(test) == min(max(round(test_fraction * n), 1), n - 1)
    np.testing.assert_array_equal(np.sort(record_ids([train, test])), np.arange(n))
    again = split(data, test_fraction=test_fraction, seed=s)
    np.testing.assert_array_equal(record_ids(list(again)), record_ids([train, test]))

    parts = partition(data, nodes=nodes, scheme=scheme, seed=s)
    assert len(parts) == nodes
    assert all(len(p) >= 1 and p.classes == classes for p in parts)
    np.testing.assert_array_equal(np.sort(record_ids(parts)), np.arange(n))
    for p in parts:  # labels travel with their records
        np.testing.assert_array_equal(p.y, data.y[p.x[:, 0].astype(np.int64)])
    if scheme == "iid":
        sizes = [len(p) for p in parts]
        assert max(sizes) - min(sizes) <= 1
    again_parts = partition(data, nodes=nodes, scheme=scheme, seed=s)
    np.testing.assert_array_equal(record_ids(again_parts), record_ids(parts))
    assert [len(p) for p in again_parts] == [len(p) for p in parts]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_different_seed_gives_a_different_split_and_partition(scheme: str) -> None:
    # With 300 records a collision has probability below 1/300! for the shuffles.
    data = indexed(300, 4)
    first = partition(data, nodes=5, scheme=scheme, seed=SEED)
    second = partition(data, nodes=5, scheme=scheme, seed=OTHER_SEED)
    assert [p.x.tolist() for p in first] != [p.x.tolist() for p in second]
    a = split(data, test_fraction=0.3, seed=SEED)[1]
    b = split(data, test_fraction=0.3, seed=OTHER_SEED)[1]
    assert a.x.tolist() != b.x.tolist()


def test_dirichlet_partitions_skew_labels_as_alpha_shrinks() -> None:
    """Small ALPHA concentrates each class on few nodes; large ALPHA spreads it evenly."""
    data = indexed(2000, 10)

    def mean_top_share(scheme: str) -> float:
        counts = np.array(
            [
                np.bincount(p.y, minlength=10)
                for p in partition(data, nodes=10, scheme=scheme, seed=SEED)
            ]
        )
        return float((counts.max(axis=0) / counts.sum(axis=0)).mean())

    assert mean_top_share("dirichlet:0.05") > 0.7
    assert mean_top_share("dirichlet:1000") < 0.2


@pytest.mark.parametrize(
    ("scheme", "fragment"),
    [
        ("foo", "unknown partition scheme 'foo'"),
        ("iid:2", "unknown partition scheme 'iid:2'"),
        ("Dirichlet:1", "unknown partition scheme 'Dirichlet:1'"),
        ("dirichlet", "unknown partition scheme 'dirichlet'"),
        ("dirichlet:", "ALPHA '' is not a number"),
        ("dirichlet:x", "ALPHA 'x' is not a number"),
        ("dirichlet:0", "ALPHA must be finite and > 0; got 0.0"),
        ("dirichlet:-1", "ALPHA must be finite and > 0; got -1.0"),
        ("dirichlet:nan", "ALPHA must be finite and > 0; got nan"),
        ("dirichlet:inf", "ALPHA must be finite and > 0; got inf"),
    ],
)
def test_partition_rejects_bad_schemes(scheme: str, fragment: str) -> None:
    with pytest.raises(ParameterError, match="partition scheme") as raised:
        partition(indexed(10, 2), nodes=2, scheme=scheme, seed=SEED)
    assert fragment in str(raised.value)


def test_partition_and_split_reject_bad_sizes() -> None:
    with pytest.raises(ParameterError, match=r"nodes must be an int in \[1, 10\].*got 11"):
        partition(indexed(10, 2), nodes=11, scheme="iid", seed=SEED)
    with pytest.raises(ParameterError, match="got 0"):
        partition(indexed(10, 2), nodes=0, scheme="iid", seed=SEED)
    with pytest.raises(ParameterError, match=r"test_fraction must be in \(0, 1\); got 1.0"):
        split(indexed(10, 2), test_fraction=1.0, seed=SEED)
    with pytest.raises(ParameterError, match="needs at least 2 records; got 1"):
        split(indexed(1, 2), test_fraction=0.5, seed=SEED)


def test_synthetic_data_is_seeded_balanced_and_scaled() -> None:
    data = synthetic(records=1000, features=5, classes=4, seed=SEED)
    assert (len(data), data.x.shape[1], data.classes, data.name) == (1000, 5, 4, "synthetic")
    np.testing.assert_array_equal(np.bincount(data.y), [250] * 4)
    assert data.x.min() == 0.0 and data.x.max() == 1.0
    same = synthetic(records=1000, features=5, classes=4, seed=SEED)
    np.testing.assert_array_equal(same.x, data.x)
    np.testing.assert_array_equal(same.y, data.y)
    other = synthetic(records=1000, features=5, classes=4, seed=OTHER_SEED)
    assert not np.array_equal(other.x, data.x)
    with pytest.raises(ParameterError, match=r"classes must be an int in \[2, records=3\]; got 4"):
        synthetic(records=3, features=5, classes=4, seed=SEED)


# --------------------------------------------------------------------------- Poisson sampling


def test_poisson_sample_rate_is_close_and_exact_threshold() -> None:
    n = 100_000
    rates = (0.001, 0.01, 0.3, 0.5, 0.99)
    # Hoeffding: P(|K - n·q| >= t) <= 2 exp(-2 t² / n) for K a sum of n independent
    # Bernoulli(q). With t = sqrt(n · ln(2 / β) / 2) and β = 2^-30 this is at most 2^-30 per
    # rate, so the whole loop fails by chance with probability at most 5 · 2^-30 < 2^-27.
    beta = 2.0**-30
    t = math.sqrt(n * math.log(2 / beta) / 2)  # about 1036 records, i.e. 0.0104 in rate
    for i, rate in enumerate(rates):
        tag = Tag("test.learning.sample", (i,))
        kept = poisson_sample(n, rate=rate, seed=SEED, tag=tag)
        assert kept.dtype == np.intp
        assert (np.diff(kept) > 0).all() and (len(kept) == 0 or 0 <= kept[0] <= kept[-1] < n)
        assert abs(len(kept) - n * realized_rate(rate)) < t

    # The rule, replayed with Python integers: keep j iff word_j < floor(rate · 2^64). Rates
    # just around the first words put the threshold within one ulp of a word.
    words = [int(w) for w in Xof(SEED, Tag("test.learning.exact")).uniform_ints(1 << 64, count=64)]
    probe = [0.0, 1.0, 2.0**-64, 1e-300, 0.1, *(w / 2.0**64 for w in words[:8])]
    for rate in probe:
        threshold = math.floor(Fraction(rate) * 2**64)
        assert poisson_threshold(rate) == threshold
        expected = [j for j, w in enumerate(words) if w < threshold]
        got = poisson_sample(64, rate=rate, seed=SEED, tag=Tag("test.learning.exact"))
        assert got.tolist() == expected

    # Rate 0 keeps nothing, rate 1 keeps everything.
    assert poisson_sample(1000, rate=0.0, seed=SEED, tag=Tag("t")).size == 0
    np.testing.assert_array_equal(
        poisson_sample(1000, rate=1.0, seed=SEED, tag=Tag("t")), range(1000)
    )
    assert poisson_sample(0, rate=0.5, seed=SEED, tag=Tag("t")).size == 0

    # A word equal to the threshold is rejected; the 2^64 threshold (rate 1) keeps all words.
    top = (1 << 64) - 1
    edge = np.array([0, 41, 42, 43, top], dtype=np.uint64)
    assert _keep(edge, 42).tolist() == [True, True, False, False, False]
    assert _keep(edge, 0).tolist() == [False] * 5
    assert _keep(edge, top).tolist() == [True, True, True, True, False]
    assert _keep(edge, 1 << 64).tolist() == [True] * 5


def test_realized_rate_is_exact_and_never_above_the_rate() -> None:
    for rate in (0.0, 1.0, 0.5, 0.01, 0.3, 2.0**-12, 0.123456789):  # all >= 2^-12 or 0
        assert realized_rate(rate) == rate
    for rate in (1e-5, 3e-10, 1e-300, 5e-324, 2.0**-12 * (1 - 2.0**-53)):
        realized = realized_rate(rate)
        assert realized <= rate
        assert Fraction(realized) == Fraction(math.floor(Fraction(rate) * 2**64), 2**64)
    assert realized_rate(5e-324) == 0.0
    for bad in (-0.1, 1.5, math.nan, math.inf, "0.5", True):
        with pytest.raises(ParameterError, match="sampling rate must be a number in"):
            realized_rate(bad)  # type: ignore[arg-type]


def test_poisson_samples_are_nested_in_the_rate_and_separated_by_the_tag() -> None:
    """One stream of words serves every rate, so a lower rate keeps a subset."""
    low = set(poisson_sample(5000, rate=0.1, seed=SEED, tag=Tag("t", (1,))).tolist())
    high = set(poisson_sample(5000, rate=0.2, seed=SEED, tag=Tag("t", (1,))).tolist())
    other = set(poisson_sample(5000, rate=0.1, seed=SEED, tag=Tag("t", (2,))).tolist())
    assert low <= high and low != high
    assert low != other


# --------------------------------------------------------------------------- training


def test_softmax_learns_digits_without_privacy() -> None:
    """Full-batch gradient descent on the mean of the per-example gradients trains."""
    train, test = split(load_digits(), test_fraction=0.25, seed=SEED)
    model = softmax_regression(64, 10)
    params = model.init(SEED)
    start = model.loss(params, train.x, train.y)
    for _ in range(200):
        params = params - 1.0 * model.per_example_gradients(params, train.x, train.y).mean(axis=0)
    assert model.loss(params, train.x, train.y) < start / 5
    assert accuracy(model, params, test) > 0.9


def test_accuracy_counts_correct_predictions() -> None:
    model = softmax_regression(1, 2)
    params = np.array([1.0, -1.0, 0.0, 0.0])  # class 0 iff x > 0
    data = Dataset(
        x=np.array([[1.0], [2.0], [-1.0], [3.0]]),
        y=np.array([0, 1, 1, 0], dtype=np.int64),
        classes=2,
        name="d",
    )
    assert accuracy(model, params, data) == 0.75
    with pytest.raises(ParameterError, match="empty dataset"):
        accuracy(model, params, data.subset(np.array([], dtype=np.intp)))
