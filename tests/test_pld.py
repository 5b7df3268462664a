"""The PLD accountant (reference/accounting/pld.py) against dp-accounting, RDP and mpmath.

Spec: spec/08-accounting.md#pld-accountant
Proof: proofs_notes/pld-upper-bound.md
"""

from __future__ import annotations

import functools
import json
import math

import mpmath
import pytest
from dp_accounting.pld import privacy_loss_distribution as dp_pld

from protocol import accounting
from protocol.errors import ParameterError
from reference.accounting import best_epsilon, pld_epsilon
from tests.cli_support import run_sdl

DELTA = 1e-5
#: Coarser than the default, so the grid runs in seconds; the bound holds at any width.
DISC = 1e-3
#: The (z, q, T) grid.
GRID = [
    (z, q, rounds) for z in (0.5, 1.0, 2.0) for q in (0.01, 0.1, 1.0) for rounds in (1, 100, 1000)
]


def _gaussian(z: float, q: float, rounds: int) -> object:
    inner: object = accounting.GaussianEvent(noise_multiplier=z)
    if q < 1:
        inner = accounting.PoissonSampledEvent(event=inner, sampling_rate=q)
    return accounting.ComposedEvent(event=inner, count=rounds)


@functools.cache
def _sdl_pld(z: float, q: float, rounds: int) -> float:
    return pld_epsilon(_gaussian(z, q, rounds), DELTA, discretization=DISC).epsilon


@functools.cache
def _dp_accounting_pld(z: float, q: float, rounds: int) -> float:
    single = dp_pld.from_gaussian_mechanism(
        standard_deviation=z, sampling_prob=q, value_discretization_interval=DISC
    )
    return float(single.self_compose(rounds).get_epsilon_for_delta(DELTA))


# ------------------------------------------------------------------ (a), (b) Gaussian


@pytest.mark.parametrize(("z", "q", "rounds"), GRID)
def test_gaussian_pld_is_within_2_percent_above_dp_accounting(
    z: float, q: float, rounds: int
) -> None:
    ours, theirs = _sdl_pld(z, q, rounds), _dp_accounting_pld(z, q, rounds)
    assert ours >= theirs * (1 - 1e-9)
    assert ours <= theirs * 1.02


@pytest.mark.parametrize(("z", "q", "rounds"), GRID)
def test_gaussian_pld_is_at_most_rdp(z: float, q: float, rounds: int) -> None:
    rdp = accounting.epsilon(_gaussian(z, q, rounds), delta=DELTA).epsilon
    ours = _sdl_pld(z, q, rounds)
    print(f"z={z} q={q} T={rounds}: rdp={rdp:.6g} pld={ours:.6g} pld/rdp={ours / rdp:.4f}")
    assert ours <= rdp


# ------------------------------------------------------------------ (c) discrete Gaussian


def test_discrete_gaussian_with_large_sigma_matches_the_gaussian_within_1_percent() -> None:
    sigma = 20.0
    discrete = accounting.ComposedEvent(
        event=accounting.DiscreteGaussianEvent(sigma2=sigma * sigma, l2_sensitivity=1.0), count=10
    )
    continuous = accounting.ComposedEvent(
        event=accounting.GaussianEvent(noise_multiplier=sigma), count=10
    )
    eps_d = pld_epsilon(discrete, DELTA).epsilon
    eps_c = pld_epsilon(continuous, DELTA).epsilon
    assert abs(eps_d - eps_c) <= 0.01 * eps_c


def test_subsampled_discrete_mechanisms_are_at_most_rdp() -> None:
    for inner in (
        accounting.DiscreteGaussianEvent(sigma2=100.0, l2_sensitivity=1.0),
        accounting.SkellamEvent(variance=100.0, l2_sensitivity=1.0, l1_sensitivity=1.0),
        accounting.DistributedDiscreteGaussianEvent(
            sigma2=25.0, clients=4, dimension=1, l2_sensitivity=2.0, l1_sensitivity=2.0
        ),
    ):
        event = accounting.ComposedEvent(
            event=accounting.PoissonSampledEvent(event=inner, sampling_rate=0.1), count=10
        )
        assert pld_epsilon(event, DELTA).epsilon <= accounting.epsilon(event, delta=DELTA).epsilon


# ------------------------------------------------------------------ (d) Skellam, exactly


def test_skellam_pld_epsilon_is_an_upper_bound_on_the_exact_hockey_stick() -> None:
    lam, delta = 8.0, 1e-3
    eps = pld_epsilon(
        accounting.SkellamEvent(variance=lam, l2_sensitivity=1.0, l1_sensitivity=1.0), delta
    ).epsilon
    with mpmath.workdps(40):
        window = 120
        pmf = {
            x: mpmath.exp(-lam) * mpmath.besseli(abs(x), lam) for x in range(-window, window + 2)
        }
        # Off the window P has mass at most 2·P(X > window) <= the Chernoff bound, doubled.
        u = mpmath.mpf(window + 1) / lam
        tail = 2 * mpmath.exp(lam * (mpmath.sqrt(1 + u * u) - 1) - (window + 1) * mpmath.asinh(u))
        assert tail < mpmath.mpf(10) ** -60
        e_eps = mpmath.exp(eps)
        for sign in (1, -1):  # both directions: Q = P shifted by +1, and by -1
            hockey = mpmath.fsum(
                max(mpmath.mpf(0), pmf[x] - e_eps * pmf.get(x - sign, mpmath.mpf(0)))
                for x in range(-window + 1, window + 1)
            )
            exact_upper = hockey + 2 * tail + pmf[-window] + pmf[window + 1]
            assert exact_upper <= delta
            # And the bound is not loose: at ε − 0.01 the exact δ exceeds δ.
            below = mpmath.fsum(
                max(mpmath.mpf(0), pmf[x] - mpmath.exp(eps - 0.01) * pmf.get(x - sign, 0))
                for x in range(-window + 1, window + 1)
            )
            assert below > delta


# ------------------------------------------------------------------ (e) bad input


@pytest.mark.parametrize(
    ("event", "delta", "needle"),
    [
        (accounting.GaussianEvent(noise_multiplier=1.0), 0.0, "delta must be in (0, 1); got 0.0"),
        (accounting.GaussianEvent(noise_multiplier=1.0), 1.5, "delta must be in (0, 1); got 1.5"),
        (
            accounting.DiscreteGaussianEvent(sigma2=100.0, l2_sensitivity=256.0),
            DELTA,
            "single coordinate: it needs l2_sensitivity < sqrt(2); got l2_sensitivity = 256.0",
        ),
        (
            accounting.SkellamEvent(variance=100.0, l2_sensitivity=256.0, l1_sensitivity=8192.0),
            DELTA,
            "l1_sensitivity < 2",
        ),
        (
            accounting.SkellamEvent(variance=100.0, l2_sensitivity=0.5, l1_sensitivity=0.5),
            DELTA,
            "integer sensitivity of at least 1",
        ),
        (
            accounting.PoissonSampledEvent(
                event=accounting.ComposedEvent(
                    event=accounting.GaussianEvent(noise_multiplier=1.0), count=2
                ),
                sampling_rate=0.5,
            ),
            DELTA,
            "subsamples GaussianEvent",
        ),
        (
            accounting.ComposedEvent(
                event=accounting.GaussianEvent(noise_multiplier=1.0), count=10**12
            ),
            DELTA,
            "use the RDP accountant",
        ),
        (
            accounting.DiscreteGaussianEvent(sigma2=100.0, l2_sensitivity=1.0),
            1e-30,
            "cannot reach delta = 1e-30: epsilon is not finite",
        ),
    ],
)
def test_pld_refuses_bad_input_with_a_typed_error(event: object, delta: float, needle: str) -> None:
    with pytest.raises(ParameterError) as info:
        pld_epsilon(event, delta)
    assert needle in str(info.value)


def test_pld_refuses_a_bad_discretization() -> None:
    with pytest.raises(ParameterError, match=r"discretization must be in \(0, 1\]; got 0"):
        pld_epsilon(accounting.GaussianEvent(noise_multiplier=1.0), DELTA, discretization=0)


def test_best_falls_back_to_rdp_where_pld_refuses() -> None:
    event = accounting.SkellamEvent(variance=1e6, l2_sensitivity=256.0, l1_sensitivity=8192.0)
    best = best_epsilon(event, DELTA)
    assert best.accountant == "rdp" and best.pld is None
    assert best.pld_refusal is not None and "single coordinate" in best.pld_refusal
    assert best.epsilon == accounting.epsilon(event, delta=DELTA).epsilon


# ------------------------------------------------------------------ (f) the command line

EPSILON = [
    "privacy",
    "epsilon",
    "--mechanism",
    "gaussian",
    "--noise-multiplier",
    "1.1",
    "--sampling-rate",
    "0.01",
    "--rounds",
    "100",
    "--delta",
    "1e-5",
    "--discretization",
    "1e-3",
]


def test_cli_pld_json_says_pld(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_sdl(capsys, [*EPSILON, "--accountant", "pld", "--json"])
    assert code == 0
    body = json.loads(out)
    assert body["accountant"] == "pld"
    assert body["epsilon"] == pytest.approx(_sdl_pld(1.1, 0.01, 100), rel=1e-12)
    assert isinstance(body["order"], float) and body["order"] > 1


def test_cli_best_picks_the_smaller(capsys: pytest.CaptureFixture[str]) -> None:
    bodies = {}
    for accountant in ("rdp", "pld", "best"):
        code, out, _ = run_sdl(capsys, [*EPSILON, "--accountant", accountant, "--json"])
        assert code == 0
        bodies[accountant] = json.loads(out)
    assert bodies["rdp"]["accountant"] == "rdp"
    smaller = min(("rdp", "pld"), key=lambda a: bodies[a]["epsilon"])
    assert bodies["best"]["accountant"] == smaller == "pld"
    assert bodies["best"]["epsilon"] == bodies[smaller]["epsilon"]


def test_cli_rdp_text_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_sdl(capsys, [*EPSILON, "--accountant", "rdp"])
    assert code == 0
    r = accounting.epsilon(_gaussian(1.1, 0.01, 100), delta=1e-5)
    assert out == (
        f"epsilon = {r.epsilon:.6g} at delta = 1e-05 (Renyi order {r.order:g}) after 100 "
        "round(s) of gaussian, noise_multiplier = 1.1, sampling rate 0.01\n"
    )


def test_cli_pld_outside_its_domain_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "privacy",
        "epsilon",
        "--mechanism",
        "skellam",
        "--variance",
        "1e6",
        "--l2-sensitivity",
        "256",
        "--l1-sensitivity",
        "8192",
        "--rounds",
        "10",
        "--delta",
        "1e-5",
        "--accountant",
        "pld",
    ]
    code, _, err = run_sdl(capsys, argv)
    assert code == 2 and "single coordinate" in err and len(err.strip().splitlines()) == 1


def test_cli_calibrate_with_pld_meets_the_target_with_less_noise(
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = [
        "privacy",
        "calibrate",
        "--mechanism",
        "gaussian",
        "--epsilon",
        "1",
        "--rounds",
        "10",
        "--delta",
        "1e-5",
        "--discretization",
        "1e-3",
        "--json",
    ]
    code, out, _ = run_sdl(capsys, [*base, "--accountant", "rdp"])
    assert code == 0
    rdp = json.loads(out)
    code, out, _ = run_sdl(capsys, [*base, "--accountant", "pld"])
    assert code == 0
    pld = json.loads(out)
    assert pld["accountant"] == "pld" and rdp["accountant"] == "rdp"
    assert pld["noise_multiplier"] < rdp["noise_multiplier"]
    z = pld["noise_multiplier"]
    again = pld_epsilon(
        accounting.ComposedEvent(event=accounting.GaussianEvent(noise_multiplier=z), count=10),
        1e-5,
        discretization=1e-3,
    ).epsilon
    assert again <= 1.0 and again >= 0.99
    assert math.isclose(again, pld["epsilon"], rel_tol=1e-12)


def test_the_informative_epsilon_table_is_current() -> None:
    """spec/08-accounting.md's table "What the tighter bounds buy": every RDP and PLD
    entry is what SDL computes now, to the 4 significant digits printed, and the RDP
    entries are at most the dp-accounting RdpAccountant values printed beside them."""
    import re  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from protocol import accounting as acc  # noqa: PLC0415

    text = (Path(__file__).resolve().parent.parent / "spec" / "08-accounting.md").read_text()
    section = text.split("### What the tighter bounds buy", 1)[1]
    rows = re.findall(r"^\| ([0-9.]+) \| ([0-9.]+) \| (.+) \|$", section, flags=re.M)
    assert len(rows) == 9, rows
    for z_text, q_text, rest in rows:
        z, q = float(z_text), float(q_text)
        _, rdp_text, dpa_rdp_text, pld_text, _ = (c.strip() for c in rest.split("|"))
        inner = acc.GaussianEvent(noise_multiplier=z)
        event = acc.PoissonSampledEvent(event=inner, sampling_rate=q) if q < 1 else inner
        composed = acc.ComposedEvent(event=event, count=1000)
        rdp = acc.epsilon(composed, delta=1e-5).epsilon
        assert f"{rdp:.4g}" == rdp_text, (z, q, rdp)
        assert rdp <= float(dpa_rdp_text) * (1 + 5e-4), (z, q)
        pld = pld_epsilon(composed, 1e-5).epsilon
        assert math.isclose(pld, float(pld_text), rel_tol=5e-4), (z, q, pld)
