"""Benchmarks: every figure is a ratio against a baseline timed in the same run.

Spec: spec/04-shamir.md#share (what ``bench shamir`` times)

Speed targets live here, never in unit tests: a timed test fails on a busy
machine for reasons that have nothing to do with the code.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from protocol.errors import ParameterError
from protocol.field import FIELDS, Field
from protocol.shamir import Shamir, lagrange_matrix
from protocol.xof import Seed, Tag, Xof


@dataclass(frozen=True)
class Timing:
    """Seconds over ``repeats`` runs: the median and the fastest."""

    median: float
    best: float
    repeats: int


def time_it(fn: Callable[[], object], repeats: int) -> Timing:
    """Time ``fn`` ``repeats`` times after one warm-up call."""
    fn()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return Timing(statistics.median(runs), min(runs), repeats)


@dataclass(frozen=True)
class ShamirBench:
    """Figures of ``sdl bench shamir``."""

    field: str
    nodes: int
    threshold: int
    dimension: int
    share: Timing
    share_product_only: Timing
    reconstruct_t_plus_1: Timing
    reconstruct_all_checked: Timing
    plaintext_sum: Timing
    galois_product: Timing | None
    galois_dimension: int
    galois_agrees: bool | None

    def ratios(self) -> dict[str, float]:
        """Every figure divided by its same-run baseline."""
        out = {
            "share_over_plaintext_sum": self.share.median / self.plaintext_sum.median,
            "reconstruct_over_plaintext_sum": self.reconstruct_t_plus_1.median
            / self.plaintext_sum.median,
            "reconstruct_all_over_plaintext_sum": self.reconstruct_all_checked.median
            / self.plaintext_sum.median,
        }
        if self.galois_product is not None:
            scale = self.dimension / self.galois_dimension
            galois_full = self.galois_product.median * scale
            out["galois_product_over_share"] = galois_full / self.share.median
            out["galois_product_over_share_product"] = galois_full / self.share_product_only.median
        return out

    def as_json(self) -> dict[str, object]:
        body = asdict(self)
        body["ratios"] = self.ratios()
        body["targets"] = {
            "share_seconds_at_most": 0.25,
            "galois_product_over_share_at_least": 70.0,
        }
        return body


def bench_shamir(
    *,
    field_name: str = "Field31",
    nodes: int = 20,
    threshold: int = 9,
    dimension: int = 1_000_000,
    repeats: int = 5,
    galois_dimension: int | None = None,
    progress: Callable[[str], None] = lambda _msg: None,
) -> ShamirBench:
    """Time sharing and reconstruction against a plaintext sum and galois.

    The galois product is timed on ``galois_dimension`` columns (default: all)
    and scaled linearly to ``dimension``; its result is compared bit for bit
    with SDL's product on the same columns.
    """
    fld: type[Field] = FIELDS[field_name]
    seed = Seed(bytes(32))
    sh = Shamir(fld, threshold)
    points = list(range(1, nodes + 1))
    progress(f"drawing a secret of {dimension:,} elements of {field_name}")
    secret = Xof(seed, Tag("bench.secret")).field_elements(fld, dimension)

    progress(f"timing share to {nodes} holders, t = {threshold} ({repeats} runs)")
    share_t = time_it(lambda: sh.share(secret, points=points, seed=seed), repeats)
    shares = sh.share(secret, points=points, seed=seed)

    basis = sh.secret_points() + sh.random_points()
    evaluate = lagrange_matrix(fld, nodes=basis, targets=points)
    values = Xof(seed, Tag("bench.values")).field_elements(fld, (threshold + 1) * dimension)
    values = values.reshape(threshold + 1, dimension)
    progress("timing the product alone")
    product_t = time_it(lambda: evaluate @ values, repeats)

    progress("timing reconstruction")
    subset = shares[: threshold + 1]
    rec_t = time_it(lambda: sh.reconstruct(subset), repeats)
    rec_all_t = time_it(lambda: sh.reconstruct(shares), repeats)

    progress("timing the plaintext baseline: numpy sum of the same number of vectors")
    plain = np.stack([s.y.values for s in shares]).astype(np.int64)
    plain_t = time_it(lambda: plain.sum(axis=0), repeats)

    galois_t: Timing | None = None
    agrees: bool | None = None
    gdim = dimension if galois_dimension is None else min(galois_dimension, dimension)
    if gdim > 0:
        progress(f"timing galois's matrix product on {gdim:,} columns (slow: about 17 s per 10^6)")
        import galois  # noqa: PLC0415  (slow import, only here)

        gf = galois.GF(fld.MODULUS)
        g_left = gf(evaluate.values.astype(np.int64))
        g_right = gf(values.values[:, :gdim].astype(np.int64))
        start = time.perf_counter()
        g_out = g_left @ g_right
        elapsed = time.perf_counter() - start
        galois_t = Timing(elapsed, elapsed, 1)
        ours = (evaluate @ values[:, :gdim]).values
        agrees = bool(np.array_equal(np.asarray(g_out, dtype=np.uint64), ours))
    return ShamirBench(
        field=field_name,
        nodes=nodes,
        threshold=threshold,
        dimension=dimension,
        share=share_t,
        share_product_only=product_t,
        reconstruct_t_plus_1=rec_t,
        reconstruct_all_checked=rec_all_t,
        plaintext_sum=plain_t,
        galois_product=galois_t,
        galois_dimension=gdim,
        galois_agrees=agrees,
    )


#: Largest relative difference between SDL's PLD ε and dp-accounting's for the same rounds.
PLD_AGREEMENT = 1e-9


@dataclass(frozen=True)
class PldBench:
    """The PLD figures of ``sdl bench accounting``: SDL's PLD accountant beside dp-accounting's.

    Spec: spec/08-accounting.md#pld-accountant
    """

    rounds: int
    delta: float
    discretization: float
    sdl: Timing
    dp_accounting: Timing
    epsilon_sdl: float
    epsilon_dp_accounting: float

    def relative_difference(self) -> float:
        """``|ε_SDL − ε_dp-accounting|`` over the larger of the two (0 when both are 0)."""
        scale = max(abs(self.epsilon_sdl), abs(self.epsilon_dp_accounting))
        if scale == 0:
            return 0.0
        return abs(self.epsilon_sdl - self.epsilon_dp_accounting) / scale

    def agrees(self) -> bool:
        """Whether the two ε agree within :data:`PLD_AGREEMENT`, relative."""
        return self.relative_difference() <= PLD_AGREEMENT

    def as_json(self) -> dict[str, object]:
        return {
            "rounds": self.rounds,
            "delta": self.delta,
            "discretization": self.discretization,
            "repeats": self.sdl.repeats,
            "sdl_seconds": self.sdl.median,
            "dp_accounting_seconds": self.dp_accounting.median,
            "ratio": self.sdl.median / self.dp_accounting.median,
            "epsilon_sdl": self.epsilon_sdl,
            "epsilon_dp_accounting": self.epsilon_dp_accounting,
            "relative_difference": self.relative_difference(),
            "epsilons_agree": self.agrees(),
        }


@dataclass(frozen=True)
class AccountingBench:
    """Figures of ``sdl bench accounting``."""

    rounds: int
    sampling_rate: float
    noise_multiplier: float
    sdl: Timing
    sdl_epsilon: float
    dp_accounting_rdp: Timing | None
    dp_accounting_epsilon: float | None
    pld: PldBench | None
    pld_refusal: str | None

    def as_json(self) -> dict[str, object]:
        body = asdict(self)
        if self.dp_accounting_rdp is not None:
            body["ratio_sdl_over_dp_accounting"] = self.sdl.median / self.dp_accounting_rdp.median
        body["target_seconds_at_most"] = 0.05
        body["pld"] = None if self.pld is None else self.pld.as_json()
        return body


def bench_accounting(
    *,
    rounds: int = 1000,
    sampling_rate: float = 0.01,
    noise_multiplier: float = 1.1,
    delta: float = 1e-5,
    repeats: int = 5,
) -> AccountingBench:
    """Time ε for ``rounds`` Poisson-subsampled Gaussian rounds, beside dp-accounting's RDP.

    The PLD figures (:func:`bench_pld`) are None, and ``pld_refusal`` says why,
    when SDL's PLD accountant refuses the rounds (too many, or too wide a PLD).
    """
    from protocol import accounting  # noqa: PLC0415

    def ours() -> float:
        event = accounting.ComposedEvent(
            event=accounting.PoissonSampledEvent(
                event=accounting.GaussianEvent(noise_multiplier=noise_multiplier),
                sampling_rate=sampling_rate,
            ),
            count=rounds,
        )
        return accounting.epsilon(event, delta=delta).epsilon

    sdl_t = time_it(ours, repeats)
    pld: PldBench | None = None
    pld_refusal: str | None = None
    try:
        pld = bench_pld(
            rounds=rounds,
            sampling_rate=sampling_rate,
            noise_multiplier=noise_multiplier,
            delta=delta,
            repeats=repeats,
        )
    except ParameterError as refusal:
        pld_refusal = str(refusal)
    theirs_t: Timing | None = None
    theirs_eps: float | None = None
    try:
        import dp_accounting  # noqa: PLC0415
    except ImportError:
        dp_accounting = None
    if dp_accounting is not None:

        def theirs() -> float:
            acc = dp_accounting.rdp.RdpAccountant(list(accounting.DEFAULT_ORDERS))
            acc.compose(
                dp_accounting.SelfComposedDpEvent(
                    dp_accounting.PoissonSampledDpEvent(
                        sampling_rate, dp_accounting.GaussianDpEvent(noise_multiplier)
                    ),
                    rounds,
                )
            )
            value: float = acc.get_epsilon(delta)
            return value

        theirs_t = time_it(theirs, repeats)
        theirs_eps = theirs()
    return AccountingBench(
        rounds=rounds,
        sampling_rate=sampling_rate,
        noise_multiplier=noise_multiplier,
        sdl=sdl_t,
        sdl_epsilon=ours(),
        dp_accounting_rdp=theirs_t,
        dp_accounting_epsilon=theirs_eps,
        pld=pld,
        pld_refusal=pld_refusal,
    )


def bench_pld(
    *,
    rounds: int,
    sampling_rate: float,
    noise_multiplier: float,
    delta: float,
    repeats: int,
) -> PldBench:
    """Time SDL's PLD ε for ``rounds`` subsampled Gaussian rounds, beside dp-accounting's PLD.

    Spec: spec/08-accounting.md#pld-accountant

    Both sides build the same pessimistic PLD with buckets of width
    ``DEFAULT_DISCRETIZATION``, compose it ``rounds`` times and read ε for
    ``delta``; SDL's side also runs its pre-condition checks.

    Raises:
        ParameterError: if SDL's PLD accountant refuses the rounds (checked
            before anything is timed).
    """
    from dp_accounting.pld import privacy_loss_distribution  # noqa: PLC0415

    from protocol import accounting  # noqa: PLC0415
    from reference.accounting.pld import DEFAULT_DISCRETIZATION, pld_epsilon  # noqa: PLC0415

    def ours() -> float:
        event = accounting.ComposedEvent(
            event=accounting.PoissonSampledEvent(
                event=accounting.GaussianEvent(noise_multiplier=noise_multiplier),
                sampling_rate=sampling_rate,
            ),
            count=rounds,
        )
        return pld_epsilon(event, delta, discretization=DEFAULT_DISCRETIZATION).epsilon

    def theirs() -> float:
        pld = privacy_loss_distribution.from_gaussian_mechanism(
            standard_deviation=noise_multiplier,
            sensitivity=1.0,
            pessimistic_estimate=True,
            value_discretization_interval=DEFAULT_DISCRETIZATION,
            sampling_prob=sampling_rate,
        )
        return float(pld.self_compose(rounds).get_epsilon_for_delta(delta))

    sdl_t = time_it(ours, repeats)  # its warm-up call raises if the accountant refuses
    theirs_t = time_it(theirs, repeats)
    return PldBench(
        rounds=rounds,
        delta=delta,
        discretization=DEFAULT_DISCRETIZATION,
        sdl=sdl_t,
        dp_accounting=theirs_t,
        epsilon_sdl=ours(),
        epsilon_dp_accounting=theirs(),
    )
