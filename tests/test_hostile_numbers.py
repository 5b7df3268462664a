"""Hostile numbers at the command line: refused at once, in one line naming the flag.

Each case once escaped as a ZeroDivisionError, OverflowError or MemoryError, ran for
minutes, or grew to gigabytes. Each must now exit 2 well within two seconds.
"""

from __future__ import annotations

import time
from fractions import Fraction

import pytest

from protocol import accounting, noise
from protocol.errors import ParameterError
from protocol.noise import MAX_VARIANCE, discrete_gaussian_table, poisson_table, sample_table
from protocol.xof import Tag, Xof
from reference.cli.main import main

HUGE = str(2**4000)  # 1205 digits
EPSILON_GAUSSIAN = ["privacy", "epsilon", "--mechanism", "gaussian"]
SKELLAM_SENSITIVITIES = ["--l2-sensitivity", "1", "--l1-sensitivity", "1"]
ONE_ROUND = ["--rounds", "1", "--delta", "1e-5"]
SAMPLE = ["noise", "sample", "--seed", "1"]


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, float]:
    start = time.perf_counter()
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse refusals
        code = int(exit_.code or 0)
    elapsed = time.perf_counter() - start
    return code, capsys.readouterr().err, elapsed


REFUSALS = [
    pytest.param(["run", "--delta", "1e-300"], "--delta", "2^-62", id="run-delta-tiny"),
    pytest.param(["run", "--epsilon", "1000"], "--epsilon", "43", id="run-epsilon-huge"),
    pytest.param(
        [*EPSILON_GAUSSIAN, "--noise-multiplier", "1e-308", *ONE_ROUND],
        "--noise-multiplier",
        "1e-06",
        id="gaussian-noise-tiny",
    ),
    pytest.param(
        [
            "privacy",
            "epsilon",
            "--mechanism",
            "skellam",
            "--variance",
            "1e-300",
            *SKELLAM_SENSITIVITIES,
            *ONE_ROUND,
        ],
        "--variance",
        "1e-06",
        id="skellam-variance-tiny",
    ),
    pytest.param(
        [*EPSILON_GAUSSIAN, "--noise-multiplier", "1", "--rounds", HUGE, "--delta", "1e-5"],
        "--rounds",
        "10^12",
        id="rounds-huge",
    ),
    pytest.param(
        [
            *EPSILON_GAUSSIAN,
            "--noise-multiplier",
            "1",
            "--rounds",
            str(10**12 + 1),
            "--delta",
            "1e-5",
        ],
        "--rounds",
        "10^12",
        id="rounds-just-over",
    ),
    pytest.param(
        [
            "privacy",
            "calibrate",
            "--mechanism",
            "skellam",
            "--epsilon",
            "1",
            "--l2-sensitivity",
            "2",
            "--l1-sensitivity",
            "1",
            *ONE_ROUND,
        ],
        "--l1-sensitivity",
        "--l2-sensitivity",
        id="l1-below-l2",
    ),
    pytest.param(
        [
            "privacy",
            "calibrate",
            "--mechanism",
            "gaussian",
            "--epsilon",
            "1",
            "--l1-sensitivity",
            "1",
            *ONE_ROUND,
        ],
        "--l1-sensitivity",
        "gaussian",
        id="l1-with-gaussian",
    ),
    pytest.param(
        [
            "privacy",
            "calibrate",
            "--mechanism",
            "skellam",
            "--epsilon",
            "1",
            "--clients",
            "3",
            *SKELLAM_SENSITIVITIES,
            *ONE_ROUND,
        ],
        "--clients",
        "skellam",
        id="clients-with-skellam",
    ),
    pytest.param(
        [*EPSILON_GAUSSIAN, "--noise-multiplier", "1", "--variance", "3", *ONE_ROUND],
        "--variance",
        "gaussian",
        id="variance-with-gaussian",
    ),
    pytest.param(
        [*SAMPLE, "--mechanism", "dgauss", "--variance", "2", "--count", str(10**11)],
        "--count",
        "10^8",
        id="count-huge",
    ),
    pytest.param(
        [*SAMPLE, "--mechanism", "dgauss", "--variance", "2", "--count", HUGE],
        "--count",
        "10^8",
        id="count-1205-digits",
    ),
    pytest.param(
        [*SAMPLE, "--mechanism", "skellam", "--variance", str(2**48), "--count", "1"],
        "variance",
        "2^24",
        id="skellam-table-too-wide",
    ),
    pytest.param(
        [*SAMPLE, "--mechanism", "dgauss", "--variance", str(2**48), "--count", "1"],
        "variance",
        "2^24",
        id="dgauss-table-too-wide",
    ),
]


@pytest.mark.parametrize(("argv", "flag", "bound"), REFUSALS)
def test_hostile_number_is_refused_in_one_line_naming_the_flag(
    capsys: pytest.CaptureFixture[str], argv: list[str], flag: str, bound: str
) -> None:
    code, err, elapsed = _run(capsys, argv)
    assert code == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert flag in err and bound in err, err
    assert elapsed < 2, f"took {elapsed:.2f} s"


def test_dgauss_table_of_tiny_variance_answers_at_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    start = time.perf_counter()
    code = main([*SAMPLE, "--mechanism", "dgauss", "--variance", "1e-6", "--count", "5"])
    elapsed = time.perf_counter() - start
    out = capsys.readouterr().out
    assert code == 0 and out.split() == ["0"] * 5
    assert elapsed < 2, f"took {elapsed:.2f} s"


def test_exp_weight_underflow_threshold_is_certified() -> None:
    # The table weight floor(2^256·exp(-y)) is 0 for y >= 178, which the sampler
    # returns without summing the series: e^178 > 2^256, certified by a partial
    # sum of its Taylor series (every term positive, so a lower bound).
    y = noise._EXP_UNDERFLOW
    partial, term = Fraction(0), Fraction(1)
    for k in range(1, 400):
        partial += term
        term = term * y / k
    assert partial > 2**noise.WEIGHT_BITS
    assert (y - 1) < noise.WEIGHT_BITS * 0.6931  # y - 1 does not suffice: 0.6931 < ln 2
    # The threshold is tight: y = 177 still gives weight 1 (exp(-177)·2^256 ≈ 1.56),
    # so its table differs from that of y = 178.
    below = discrete_gaussian_table(Fraction(1, 354))  # y = 1/(2σ²) = 177
    at = discrete_gaussian_table(Fraction(1, 356))  # y = 178
    assert below.thresholds != at.thresholds


def test_too_wide_tables_are_refused_before_they_are_built() -> None:
    for build, value in (
        (discrete_gaussian_table, MAX_VARIANCE),
        (poisson_table, MAX_VARIANCE / 2),
    ):
        start = time.perf_counter()
        with pytest.raises(ParameterError, match="2\\^24"):
            build(value)
        assert time.perf_counter() - start < 0.5
    with pytest.raises(ParameterError, match="variance"):
        sample_table(Xof(bytes(32), Tag("test", (0,))), "skellam", MAX_VARIANCE, 1)


def test_calibrate_meets_a_huge_target_epsilon(capsys: pytest.CaptureFixture[str]) -> None:
    code, err, elapsed = _run(
        capsys,
        ["privacy", "calibrate", "--mechanism", "gaussian", "--epsilon", "1e308", *ONE_ROUND],
    )
    assert code == 0 and err == ""
    assert elapsed < 2


def test_rounds_at_the_bound_give_a_finite_epsilon(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*EPSILON_GAUSSIAN, "--noise-multiplier", "1e-6", "--rounds", str(10**12)]
    code, err, elapsed = _run(capsys, [*argv, "--delta", "1e-5", "--sampling-rate", "0.5"])
    assert code == 0 and err == "" and elapsed < 2


@pytest.mark.parametrize("value", [1e-308, 1e-151, 1e151, 1e300])
def test_accountant_refuses_values_whose_square_is_not_a_normal_float(value: float) -> None:
    with pytest.raises(ParameterError, match="normal float"):
        accounting.GaussianEvent(noise_multiplier=value)
    with pytest.raises(ParameterError, match="normal float"):
        accounting.SkellamEvent(variance=value, l2_sensitivity=1, l1_sensitivity=1)
    with pytest.raises(ParameterError, match="normal float"):
        accounting.DiscreteGaussianEvent(sigma2=1, l2_sensitivity=value)


def test_a_delta_the_samplers_already_use_up_is_refused_before_training(
    capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    """δ = 1e-15 is in (0, 1), but the run's table samplers alone charge about 1e-14."""
    start = time.perf_counter()
    code = main(["run", "--delta", "1e-15", "--rounds", "2", "--quiet", "--out", str(tmp_path)])
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert line.startswith("sdl run: error: --delta 1e-15 is at most what this run's noise")
    assert "raise --delta" in line
    assert elapsed < 10, f"took {elapsed:.2f} s"
