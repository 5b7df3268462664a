"""The learning job: noise equivalence of the trust models, accounting, determinism, CLI.

Spec: spec/13-learning.md
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from protocol.accounting import (
    ComposedEvent,
    RoundRecord,
    SkellamEvent,
    epsilon,
    realized_event,
)
from protocol.encoding import encode, norm_bound_sq
from protocol.noise import STATISTICAL_DISTANCE_BOUND
from protocol.xof import Tag, derive_seed
from reference.cli.main import main
from reference.learning.data import Dataset, realized_rate
from reference.learning.job import (
    JobConfig,
    _aggregate,
    _draw_roots,
    _local_contributions,
    _rotation_seed,
    plan_job,
    planned_dropouts,
    run_job,
)
from reference.oracle.format import case_seed

SMALL = {"nodes": 4, "rounds": 3, "threshold": 1}


def _cfg(**kw: object) -> JobConfig:
    return JobConfig(seed=derive_seed(case_seed(0), Tag("tests.job")), **{**SMALL, **kw})  # type: ignore[arg-type]


def test_distributed_and_central_add_noise_of_the_same_distribution() -> None:
    """With no dropouts or colluders, n shares of Sk(σ*²/n) are one Sk(σ*²).

    Both trust models aggregate zero updates over several rounds; the
    released values are pure noise. Skellam's variance is its parameter, so
    each sample variance must be within 12% of σ*² (each estimate over
    ~2600 samples has relative standard deviation about sqrt(2/2600) < 3%,
    so a false failure needs a 4-sigma deviation: probability < 10^-4 each).
    """
    variances = {}
    for trust in ("distributed", "central"):
        s = plan_job(_cfg(trust=trust))
        zeros = {i: s.encoding.field.zeros(s.d_pad) for i in range(1, 5)}
        samples = []
        for r in range(4):
            total, _, _ = _aggregate(s, r, zeros, [1, 2, 3, 4], roots=_draw_roots(s.cfg))
            assert total is not None
            samples.append(total.signed_decode())
        v = np.concatenate(samples).astype(np.float64)
        variances[trust] = (float(v.var()), s.variance)
    (dist, target_d), (cent, target_c) = variances["distributed"], variances["central"]
    assert target_d == target_c > 0
    assert abs(dist / target_d - 1) < 0.12, variances
    assert abs(cent / target_c - 1) < 0.12, variances


def test_reported_epsilon_is_the_accountants_for_the_realized_rounds() -> None:
    """The job's ε equals the accountant's value, recomputed here from the rounds that released.

    With dropouts, some rounds run with fewer contributors; each released
    round is charged Sk(σ*²) (the plan's honest-noise guarantee) with the
    sensitivities of one encoding, and the table samplers' distance counts
    the released rounds only.
    """
    cfg = _cfg(nodes=6, rounds=4, dropout_rate=0.3)
    result = run_job(cfg)
    s = plan_job(cfg)
    released = [h for h in result.history if h.released]
    assert released, "no round released"
    records = [
        RoundRecord(
            contributors=h.contributors,
            dropouts=6 - h.contributors,
            colluders=0,
            honest_variance=s.variance,
            sampling_rate=realized_rate(1.0),
            mechanism="skellam",
            l2_sensitivity=s.l2,
            l1_sensitivity=s.l1,
            dimension=s.d_pad,
        )
        for h in released
    ]
    per_round = float(6 * (planned_dropouts(cfg) + 1) * s.d_pad * 2 * STATISTICAL_DISTANCE_BOUND)
    expected = epsilon(
        realized_event(records), delta=cfg.delta, sampler_distance=per_round * len(released)
    ).epsilon
    assert result.epsilon == pytest.approx(expected, rel=1e-12)
    # And the calibration met the target for the planned rounds.
    planned = ComposedEvent(
        event=SkellamEvent(variance=s.variance, l2_sensitivity=s.l2, l1_sensitivity=s.l1),
        count=cfg.rounds,
    )
    assert epsilon(planned, delta=cfg.delta).epsilon <= cfg.epsilon
    assert result.epsilon <= cfg.epsilon


def test_one_record_changes_exactly_one_encoding() -> None:
    """Adding one record to a node changes its contribution by that record's encoding only.

    Proof: proofs_notes/record-level-sensitivity.md
    """
    s = plan_job(_cfg())
    params = s.model.init(derive_seed(s.cfg.seed, Tag("learning.init")))
    params = params + 0.01  # away from the all-zero start
    shard = s.shards[0]
    base = Dataset(x=shard.x[:-1], y=shard.y[:-1], classes=shard.classes, name="base")
    s.shards[0] = base
    roots = _draw_roots(s.cfg)
    without, _ = _local_contributions(s, params, 0, [1], roots=roots)
    s.shards[0] = shard
    with_z, _ = _local_contributions(s, params, 0, [1], roots=roots)
    diff = (with_z[1] - without[1]).signed_decode()
    # The extra record's own encoding, recomputed from its definition.
    g = s.model.per_example_gradients(params, shard.x[-1:], shard.y[-1:])[0]
    g = g * min(1.0, s.cfg.clip / float(np.linalg.norm(g)))
    node_seed = derive_seed(s.cfg.seed, Tag("learning.node", (1,)))
    own = encode(
        g,
        params=s.encoding,
        rotation_seed=_rotation_seed(s.cfg, 0),
        rounding_seed=derive_seed(node_seed, Tag("learning.rounding", (0, len(shard) - 1))),
    )
    assert diff.tolist() == own.values.signed_decode().tolist()
    assert int((diff.astype(object) ** 2).sum()) <= norm_bound_sq(s.encoding, length=s.dim)


def test_the_job_is_deterministic_given_its_seed() -> None:
    a, b = run_job(_cfg()), run_job(_cfg())
    assert [h.accuracy for h in a.history] == [h.accuracy for h in b.history]
    assert a.epsilon == b.epsilon
    other = run_job(JobConfig(seed=derive_seed(case_seed(1), Tag("tests.job")), **SMALL))  # type: ignore[arg-type]
    assert [h.accuracy for h in other.history] != [h.accuracy for h in a.history]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"nodes": 1}, "nodes"),
        ({"trust": "trusted"}, "trust"),
        ({"epsilon": 0.0}, "epsilon"),
        ({"delta": 1.0}, "delta"),
        ({"dropout_rate": 1.0}, "dropout_rate"),
        ({"threshold": 4}, "threshold"),
        ({"mechanism": "gauss"}, "mechanism"),
    ],
)
def test_bad_configuration_is_refused_naming_the_value(kw: dict[str, object], message: str) -> None:
    from protocol.errors import ParameterError  # noqa: PLC0415

    with pytest.raises(ParameterError, match=message):
        _cfg(**kw)


def test_cli_run_json_with_the_same_seed_for_distributed_and_central(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outs = {}
    for trust in ("distributed", "central"):
        code = main(
            [
                "run",
                "--nodes",
                "4",
                "--rounds",
                "2",
                "--threshold",
                "1",
                "--seed",
                "7",
                "--trust",
                trust,
                "--json",
                "--quiet",
                "--out",
                str(tmp_path / trust),
            ]
        )
        assert code == 0
        outs[trust] = json.loads(capsys.readouterr().out)
        for key in (
            "accuracy",
            "epsilon",
            "delta",
            "rounds",
            "nodes",
            "trust",
            "mechanism",
            "seconds",
        ):
            assert key in outs[trust]
        assert 0 <= outs[trust]["accuracy"] <= 1
        assert (tmp_path / trust / "run.json").is_file()
        assert (tmp_path / trust / "run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Same seed: same data, same calibration, same noise parameter.
    assert outs["distributed"]["noise_variance"] == outs["central"]["noise_variance"]
    assert outs["distributed"]["epsilon"] <= 2.0 and outs["central"]["epsilon"] <= 2.0


def test_cli_run_reports_a_bad_data_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,x\n3,oops,y\n")
    assert main(["run", "--data", str(bad), "--quiet", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "oops" in err
    assert not (tmp_path / "o" / "run.json").exists()


def test_run_json_bytes_sent_are_the_wire_bytes_of_every_message_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each round's bytes_sent equals the length of every sent message's binary wire form.

    The test wraps the simulator to see every message sent, and encodes each one for real
    (encode_wire), independently of the wire_size shortcut the job uses.
    """
    from protocol.messages import Message, encode_wire  # noqa: PLC0415
    from reference.learning import job  # noqa: PLC0415

    rounds: list[tuple[int, int]] = []  # (messages, bytes) per simulated round
    real = job.simulate

    def spy(scenario: Any, **kw: Any) -> Any:
        seen: list[Message] = []
        inner = kw.pop("on_send", None)

        def on_send(message: Message) -> None:
            seen.append(message)
            if inner is not None:
                inner(message)

        outcome = real(scenario, on_send=on_send, **kw)
        fld = scenario.params.field
        rounds.append((len(seen), sum(len(encode_wire(m, fld)) for m in seen)))
        return outcome

    monkeypatch.setattr(job, "simulate", spy)
    argv = ["run", "--nodes", "4", "--rounds", "3", "--threshold", "1", "--seed", "7",
            "--quiet", "--json", "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    history = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))["history"]
    assert len(history) == len(rounds) == 3
    for h, (messages, wire_bytes) in zip(history, rounds, strict=True):
        assert h["messages"] == messages > 0
        assert h["bytes_sent"] == wire_bytes
        # Every message has at least its length prefix and a JSON header.
        assert h["bytes_sent"] > 20 * h["messages"]


def test_distributed_dgauss_calibration_stays_in_the_bound_s_domain() -> None:
    # A generous target: the least noise the search may try is what the sum-of-discrete-
    # Gaussians bound covers (σ >= 1/2 per draw), not below it (spec 08).
    from protocol.accounting import DDG_MIN_SIGMA  # noqa: PLC0415
    from reference.learning.job import JobConfig, calibrate_noise  # noqa: PLC0415

    cfg = JobConfig(seed=b"\x01" * 32, mechanism="dgauss", epsilon=25.0, rounds=1)
    variance = calibrate_noise(cfg, l2=1.0, l1=1.0, dim=4)
    assert variance / (cfg.nodes - cfg.colluders) >= DDG_MIN_SIGMA**2
