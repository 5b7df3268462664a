"""The ``sdl`` command line: help that teaches, JSON for machines, typed errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from reference.cli.main import main


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, object]:
    assert main(argv) == 0
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def test_help_lists_every_command_with_examples() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "reference.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for word in ("demo", "vectors", "bench", "Examples:", "sdl vectors check spec/vectors"):
        assert word in proc.stdout


def test_demo_json_sum_equals_the_plaintext_sum_of_its_inputs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = _json(capsys, ["demo", "--seed", "1", "--json"])
    inputs = np.array(out["inputs"])
    assert inputs.shape == (7, 4)
    assert out["reconstructed_sum"] == inputs.sum(axis=0).tolist()
    assert out["matches"] is True
    assert out["flagged_aggregators"] == [out["tampered_aggregator"]] == [2]


def test_demo_is_reproducible_from_its_seed(capsys: pytest.CaptureFixture[str]) -> None:
    first = _json(capsys, ["demo", "--seed", "abc", "--json"])
    second = _json(capsys, ["demo", "--seed", "abc", "--json"])
    other = _json(capsys, ["demo", "--seed", "abd", "--json"])
    assert first == second
    assert first["inputs"] != other["inputs"]


def test_demo_without_redundancy_still_reconstructs(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, ["demo", "--seed", "2", "--nodes", "4", "--threshold", "2", "--json"])
    assert out["matches"] is True
    assert out["tampered_aggregator"] is None


def test_demo_rejects_too_few_nodes_naming_the_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--nodes", "3", "--threshold", "2"]) == 2
    err = capsys.readouterr().err
    assert "nodes must be >= threshold + 2 = 4" in err and "got 3" in err


@pytest.mark.parametrize("seed", ["xyz", "", "0" * 65])
def test_bad_seed_is_a_clear_error(capsys: pytest.CaptureFixture[str], seed: str) -> None:
    assert main(["demo", "--seed", seed]) == 2
    assert "seed must be 1 to 64 hex digits" in capsys.readouterr().err


def test_bad_integer_argument_is_rejected_by_the_parser(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--nodes", "-1"])
    assert exc.value.code == 2
    assert "expected a positive integer; got -1" in capsys.readouterr().err


def test_vectors_check_of_a_missing_directory_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vectors", "check", "/nonexistent/sdl-vectors"]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_vectors_check_of_an_empty_directory_fails(
    capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    assert main(["vectors", "check", str(tmp_path)]) == 1
    assert "no *.json vector files" in capsys.readouterr().err


def test_bench_shamir_json_reports_ratios_and_galois_agreement(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["bench", "shamir", "--dimension", "3000", "--repeats", "1"]
    out = _json(capsys, [*argv, "--galois-dimension", "700", "--json"])
    assert out["galois_agrees"] is True
    ratios = out["ratios"]
    assert isinstance(ratios, dict)
    for key in ("share_over_plaintext_sum", "galois_product_over_share"):
        assert ratios[key] > 0


def test_bench_rejects_threshold_above_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "shamir", "--nodes", "3", "--threshold", "3"]) == 2
    assert "--nodes must be >= --threshold + 1 = 4" in capsys.readouterr().err


def test_noise_sample_json_is_reproducible_and_follows_the_spec_stream(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fractions import Fraction  # noqa: PLC0415

    from protocol.noise import sample, sample_table  # noqa: PLC0415
    from protocol.xof import Tag, Xof  # noqa: PLC0415
    from reference.common.seeds import seed_from_hex  # noqa: PLC0415

    argv = ["noise", "sample", "--mechanism", "skellam", "--variance", "25/2"]
    out = _json(capsys, [*argv, "--count", "30", "--seed", "1f", "--json"])
    assert set(out) >= {"mechanism", "variance", "seed", "samples"}
    assert out["mechanism"] == "skellam" and out["variance"] == "25/2" and out["seed"] == "1f"
    samples = out["samples"]
    assert isinstance(samples, list) and len(samples) == 30
    assert all(type(v) is int for v in samples)
    assert out["sampler"] == "table"
    assert out["statistical_distance_bound"] == "1/18446744073709551616"
    xof = Xof(seed_from_hex("1f"), Tag("noise.sample", (1,)))
    assert samples == sample_table(xof, "skellam", Fraction(25, 2), 30).tolist()
    again = _json(capsys, [*argv, "--count", "30", "--seed", "1f", "--json"])
    assert again["samples"] == samples
    exact = _json(capsys, [*argv, "--count", "30", "--seed", "1f", "--sampler", "exact", "--json"])
    assert exact["statistical_distance_bound"] == "0"
    xof = Xof(seed_from_hex("1f"), Tag("noise.sample", (1,)))
    assert exact["samples"] == sample(xof, "skellam", Fraction(25, 2), 30)


def test_noise_sample_plain_output_is_one_int_per_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert (
        main(
            [
                "noise",
                "sample",
                "--mechanism",
                "dgauss",
                "--variance",
                "4",
                "--count",
                "5",
                "--seed",
                "2",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.split()
    assert len(lines) == 5 and all(int(v) == float(v) for v in lines)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--variance", "-3", "--seed", "1"], "variance must be > 0; got -3"),
        (["--variance", "abc", "--seed", "1"], "expected a positive number such as 12.5"),
        (["--variance", "0", "--seed", "1"], "variance must be > 0; got 0"),
        (["--variance", "4", "--seed", "xyz"], "seed must be 1 to 64 hex digits"),
    ],
)
def test_noise_sample_bad_arguments_exit_2_with_a_clear_error(
    capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    argv = ["noise", "sample", "--mechanism", "dgauss", "--count", "3", *args]
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    assert code == 2
    assert needle in capsys.readouterr().err
