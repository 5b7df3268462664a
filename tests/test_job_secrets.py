"""The learning job's seeds: the public seed, the nodes' secret roots, and the two digests.

Spec: spec/13-learning.md#seeds-and-node-secrets, spec/13-learning.md#digests
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from protocol.errors import ParameterError
from protocol.field import Field, Field31, Field61
from protocol.xof import Seed, Tag, derive_seed
from reference.cli.main import main
from reference.learning import evaluate
from reference.learning import job as job_module
from reference.learning.job import (
    JobConfig,
    ReleaseDigest,
    model_digest,
    node_root,
    noise_seed,
    plan_job,
    protocol_seed,
    run_job,
    sampling_seed,
)
from reference.oracle.format import case_seed
from reference.sim.scenarios import build
from reference.sim.simulate import Scenario, simulate

SEED = derive_seed(case_seed(0), Tag("tests.job"))
#: The configuration whose digests were recorded before node roots existed.
PINNED = {"nodes": 4, "rounds": 2, "threshold": 1}
#: ``released_sha256`` and ``model_sha256`` of ``run_job(JobConfig(seed=SEED, **PINNED,
#: trust=trust))`` (distributed with dropout_rate 0.2), computed by the job as it was when
#: every node's sampling, rounding, protocol and noise seed derived from the run seed.
RECORDED = {
    "distributed": (
        "34cd37335d45c5e4cd0f134543257ca525b4ceb4a975293ff99c1e57585ee6ed",
        "fdb56f5d4ca739ec3c0d931ea17037cf73bcb686e29071bb6b481715f41ea96c",
    ),
    "central": (
        "a634e20fd13efce07c6bb402f763ef4cc510616a4f377f5273260343fe9da413",
        "d236df2269d69f48fa83102cbdd67223e0398f2dffd5613bf5314333af4fffe8",
    ),
    "local": (
        "0c3466fdfe589d626ba432a1ba4109dcf837b26f4f7c8c4088afb53275676e4e",
        "aa2beffa52daaa4d19c9bf47cd925d0a287a7702935a236c10c0c0d454c5234c",
    ),
    "none": (
        "fa7d6794ad96c5adc8d6357a80fe6b1982306129037c4ed3dacfbce86d5e78ca",
        "1803721cb3902135826ece7c2b8090aea88c2282abb1ecb87b0fd7e887917c5b",
    ),
}
HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def _cfg(**kw: Any) -> JobConfig:
    return JobConfig(seed=SEED, **{**PINNED, **kw})


# ---------------------------------------------------------------------- deterministic mode


def test_deterministic_helpers_are_the_single_seed_derivations() -> None:
    cfg = _cfg(rounds=3)
    for node in range(1, cfg.nodes + 1):
        old_node_seed = derive_seed(SEED, Tag("learning.node", (node,)))
        root = node_root(cfg, node, None)
        assert root == old_node_seed
        assert sampling_seed(root) == old_node_seed
        for r in range(cfg.rounds):
            old_master = derive_seed(SEED, Tag("learning.protocol", (r,)))
            assert protocol_seed(cfg, r, node, root) == derive_seed(
                old_master, Tag("sim.node", (node,))
            )
    for r in range(cfg.rounds):
        for who in range(cfg.nodes + 1):
            root = node_root(cfg, who, None)
            assert noise_seed(cfg, r, who, root) == derive_seed(
                SEED, Tag("learning.noise_seed", (r, who))
            )


@pytest.mark.parametrize("trust", sorted(RECORDED))
def test_deterministic_runs_reproduce_the_digests_recorded_before_node_roots(trust: str) -> None:
    cfg = _cfg(trust=trust, dropout_rate=0.2 if trust == "distributed" else 0.0)
    assert cfg.deterministic is True  # the library default
    a, b = run_job(cfg), run_job(cfg)
    assert all(h.released for h in a.history)
    assert (a.released_sha256, a.model_sha256) == RECORDED[trust]
    assert (b.released_sha256, b.model_sha256) == RECORDED[trust]
    out = a.to_json()
    assert out["deterministic"] is True and "not private" in out["node_secrets"]


# ---------------------------------------------------------------------- private mode


def test_private_runs_differ_in_noise_but_share_the_public_choices() -> None:
    cfg = _cfg(deterministic=False, dropout_rate=0.2)
    a, b = run_job(cfg), run_job(cfg)
    assert a.released_sha256 != b.released_sha256
    assert a.model_sha256 != b.model_sha256
    # The public seed still fixes the split, the partition and the simulated dropouts.
    p, q = plan_job(cfg), plan_job(_cfg(dropout_rate=0.2))
    assert np.array_equal(p.train.x, q.train.x) and np.array_equal(p.test.y, q.test.y)
    assert all(np.array_equal(s.x, t.x) for s, t in zip(p.shards, q.shards, strict=True))
    assert [h.dropouts for h in a.history] == [h.dropouts for h in b.history]
    assert (a.train_records, a.test_records) == (b.train_records, b.test_records)
    assert a.to_json()["deterministic"] is False


def _strings(obj: Any, path: str = "") -> list[tuple[str, str]]:
    """Every (path, text) of a JSON value: keys and string values alike."""
    if isinstance(obj, dict):
        out = []
        for k, v in obj.items():
            out.append((f"{path}/{k}", str(k)))
            out += _strings(v, f"{path}/{k}")
        return out
    if isinstance(obj, list):
        return [s for i, v in enumerate(obj) for s in _strings(v, f"{path}/{i}")]
    return [(path, str(obj))]


@pytest.mark.parametrize("trust", ["distributed", "central", "local"])
def test_run_json_holds_no_64_hex_string_but_the_public_seed_and_the_digests(trust: str) -> None:
    out = run_job(_cfg(trust=trust, deterministic=False, rounds=1)).to_json()
    found = {path for path, text in _strings(out) if HEX64.search(text)}
    assert found == {"/seed", "/released_sha256", "/model_sha256"}
    assert out["seed"] == SEED.hex()


def test_no_drawn_root_or_seed_derived_from_one_reaches_run_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drawn: list[bytes] = []
    real = job_module.secrets.token_bytes

    def record(n: int) -> bytes:
        drawn.append(real(n))
        return drawn[-1]

    monkeypatch.setattr(job_module.secrets, "token_bytes", record)
    for trust in ("distributed", "central"):
        drawn.clear()
        cfg = _cfg(trust=trust, deterministic=False, rounds=1)
        text = json.dumps(run_job(cfg).to_json())
        assert len(drawn) == cfg.nodes + (trust == "central")
        for root in drawn:
            derived = [
                derive_seed(Seed(root), Tag("learning.protocol", (0,))),
                derive_seed(Seed(root), Tag("learning.noise_seed", (0,))),
            ]
            for secret in (root, *derived):
                assert secret.hex() not in text.lower()


def test_node_root_refuses_a_missing_or_unexpected_draw() -> None:
    with pytest.raises(ParameterError, match="needs node 1's drawn 32-byte root; got None"):
        node_root(_cfg(deterministic=False), 1, None)
    with pytest.raises(ParameterError, match="deterministic run derives every root"):
        node_root(_cfg(), 1, Seed(bytes(32)))
    with pytest.raises(ParameterError, match="exactly 32 bytes; got 31 bytes"):
        node_root(_cfg(deterministic=False), 1, Seed(bytes(31)))
    with pytest.raises(ParameterError, match=r"node must be an int in \[0, 4\].*got 5"):
        node_root(_cfg(), 5, None)
    private = _cfg(deterministic=False)
    root = node_root(private, 2, Seed(bytes(range(32))))
    assert protocol_seed(private, 1, 2, root) == derive_seed(root, Tag("learning.protocol", (1,)))
    assert noise_seed(private, 1, 2, root) == derive_seed(root, Tag("learning.noise_seed", (1,)))


def test_deterministic_must_be_a_bool() -> None:
    with pytest.raises(ParameterError, match="deterministic must be a bool; got 1"):
        _cfg(deterministic=1)


# ---------------------------------------------------------------------- the simulator


def test_scenario_seeds_replace_the_master_derived_node_seeds() -> None:
    master = derive_seed(case_seed(3), Tag("tests.job.scenario"))
    base = build(master=master, nodes=4, threshold=1)
    contributors = base.params.contributors
    own = {i: derive_seed(master, Tag("sim.node", (i,))) for i in contributors}
    same = Scenario(params=base.params, master=master, seeds=own)
    assert simulate(same).released == simulate(base).released
    other = {i: derive_seed(case_seed(4), Tag("tests.node", (i,))) for i in contributors}
    moved = Scenario(params=base.params, master=master, seeds=other)
    assert moved.node_seed(contributors[0]) == other[contributors[0]]
    released, baseline = simulate(moved).released, simulate(base).released
    assert released is not None and baseline is not None
    assert released.encode() != baseline.encode()


def test_scenario_refuses_seeds_not_one_per_contributor_of_32_bytes() -> None:
    master = derive_seed(case_seed(3), Tag("tests.job.scenario"))
    p = build(master=master, nodes=4, threshold=1).params
    good = {i: derive_seed(master, Tag("tests.node", (i,))) for i in p.contributors}
    missing = dict(list(good.items())[1:])
    with pytest.raises(ParameterError, match="exactly the contributors"):
        Scenario(params=p, master=master, seeds=missing)
    with pytest.raises(ParameterError, match="exactly the contributors"):
        Scenario(params=p, master=master, seeds={**good, 99: master})
    short = {**good, p.contributors[0]: Seed(bytes(16))}
    with pytest.raises(ParameterError, match=r"seeds\[1\] must be a 32-byte seed; got 16 bytes"):
        Scenario(params=p, master=master, seeds=short)


# ---------------------------------------------------------------------- digests


class Field17(Field):
    """A one-byte field: the digest's general (non-word) encoding path."""

    MODULUS = 17


def test_release_digest_is_sha256_of_round_numbers_and_field_bytes() -> None:
    a = Field61(np.array([0, 1, 2**61 - 2], dtype=np.uint64))
    b = Field31(np.array([5, 2**31 - 2], dtype=np.uint64))
    c = Field17(np.array([16, 0, 3], dtype=np.uint64))
    d = ReleaseDigest()
    d.add(1, a)
    d.add(3, b)
    d.add(7, c)
    want = hashlib.sha256(
        struct.pack("<I", 1)
        + struct.pack("<3Q", 0, 1, 2**61 - 2)
        + struct.pack("<I", 3)
        + struct.pack("<2I", 5, 2**31 - 2)
        + struct.pack("<I", 7)
        + bytes([16, 0, 3])
    ).hexdigest()
    assert d.hexdigest() == want
    assert ReleaseDigest().hexdigest() == hashlib.sha256(b"").hexdigest()


def test_release_digest_refuses_rounds_out_of_order_or_range() -> None:
    d = ReleaseDigest()
    with pytest.raises(ParameterError, match="got 0"):
        d.add(0, Field31.zeros(1))
    d.add(2, Field31.zeros(1))
    with pytest.raises(ParameterError, match="got 2"):
        d.add(2, Field31.zeros(1))
    with pytest.raises(ParameterError, match="got 4294967296"):
        d.add(2**32, Field31.zeros(1))


def test_model_digest_is_sha256_of_little_endian_float64() -> None:
    params = np.array([[0.5, -1.25], [3.0, 1e-300]])
    want = hashlib.sha256(struct.pack("<4d", 0.5, -1.25, 3.0, 1e-300)).hexdigest()
    assert model_digest(params) == want
    assert model_digest(params.astype(">f8")) == want  # the byte order is the digest's own


def test_released_digest_of_a_run_covers_only_the_released_rounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every released sum the job decodes, hashed here with hashlib, gives released_sha256."""
    seen: list[tuple[int, Field]] = []
    real = job_module.decode_sum
    rounds: list[int] = []

    def spy(total: Field, **kw: Any) -> Any:
        seen.append((len(rounds), total))
        return real(total, **kw)

    monkeypatch.setattr(job_module, "decode_sum", spy)
    cfg = _cfg(rounds=4, dropout_rate=0.5, trust="distributed")
    result = run_job(cfg, on_round=lambda log: rounds.append(log.round))
    released = [h.round for h in result.history if h.released]
    assert len(seen) == len(released)
    want = hashlib.sha256()
    for number, (_, total) in zip(released, seen, strict=True):
        want.update(number.to_bytes(4, "little") + total.encode())
    assert result.released_sha256 == want.hexdigest()


# ---------------------------------------------------------------------- the commands

RUN = ["run", "--nodes", "4", "--rounds", "1", "--threshold", "1", "--quiet"]


def test_sdl_run_without_seed_is_private_and_says_the_secrets_were_not_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*RUN, "--out", str(tmp_path / "a")]) == 0
    text = capsys.readouterr().out
    assert "public seed" in text
    assert "node secrets   drawn from the OS" in text and "not written" in text
    assert main([*RUN, "--json", "--out", str(tmp_path / "b")]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["deterministic"] is False
    written = json.loads((tmp_path / "b" / "run.json").read_text(encoding="utf-8"))
    assert written["deterministic"] is False and written["seed"] == obj["seed"]
    found = {path for path, s in _strings(written) if HEX64.search(s)}
    assert found == {"/seed", "/released_sha256", "/model_sha256"}


def test_sdl_run_with_seed_says_it_is_a_deterministic_test_mode_and_not_private(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*RUN, "--seed", "7", "--out", str(tmp_path / "a")]) == 0
    text = capsys.readouterr().out
    assert "deterministic test mode" in text and "NONE" in text
    runs = []
    for out in ("b", "c"):
        assert main([*RUN, "--seed", "7", "--json", "--out", str(tmp_path / out)]) == 0
        runs.append(json.loads(capsys.readouterr().out))
    assert runs[0]["deterministic"] is True
    assert "not private" in runs[0]["node_secrets"]
    assert runs[0]["released_sha256"] == runs[1]["released_sha256"]
    assert runs[0]["model_sha256"] == runs[1]["model_sha256"]


def test_evaluation_is_deterministic_and_reads_rows_without_the_key(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="deterministic seeds only"):
        evaluate.spec(0, trust="none", deterministic=False)
    assert evaluate.spec(0, trust="none").key == evaluate.spec(0, trust="none").key
    cfg = evaluate.job_config(evaluate.spec(0, trust="none").config, out=tmp_path)
    assert cfg.deterministic is True
    old_row = {
        "config": {"trust": "none", "seed": evaluate.eval_seed(0).hex()},
        "seed_index": 0,
        "result": {"accuracy": 0.9, "epsilon": 0.0, "released_rounds": 60,
                   "dataset": "digits", "history": []},
        "wall_seconds": 1.0,
    }  # fmt: skip
    (tmp_path / evaluate.RESULTS_FILE).write_text(json.dumps(old_row) + "\n", encoding="utf-8")
    (record,) = evaluate.read_results(tmp_path / evaluate.RESULTS_FILE)
    assert evaluate.select([record], deterministic=True) == [record]
    report = evaluate.write_report(tmp_path, plots=False).read_text(encoding="utf-8")
    assert "Deterministic seeds: reproducible, not private" in report


def test_committed_results_load_as_deterministic_rows() -> None:
    path = Path(__file__).parent.parent / "reference" / "evaluation" / evaluate.RESULTS_FILE
    records = evaluate.read_results(path)
    assert records and evaluate.select(records, deterministic=True) == records
