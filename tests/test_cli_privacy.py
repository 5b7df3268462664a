"""``sdl privacy``: the CLI contract of the accountant (flags and JSON keys are fixed)."""

from __future__ import annotations

import json

import pytest

from tests.cli_support import run_sdl

GAUSSIAN = ["--mechanism", "gaussian", "--noise-multiplier", "1.1"]
SKELLAM = [
    "--mechanism",
    "skellam",
    "--variance",
    "1e6",
    "--l2-sensitivity",
    "256",
    "--l1-sensitivity",
    "8192",
]
DGAUSS = [
    "--mechanism",
    "dgauss",
    "--sigma",
    "300",
    "--clients",
    "10",
    "--dimension",
    "1024",
    "--l2-sensitivity",
    "256",
    "--l1-sensitivity",
    "8192",
]


@pytest.mark.parametrize(
    "mechanism", [GAUSSIAN, SKELLAM, DGAUSS], ids=["gaussian", "skellam", "dgauss"]
)
def test_epsilon_json_has_the_contract_keys(
    capsys: pytest.CaptureFixture[str], mechanism: list[str]
) -> None:
    argv = [
        "privacy",
        "epsilon",
        *mechanism,
        "--sampling-rate",
        "0.01",
        "--rounds",
        "100",
        "--delta",
        "1e-5",
        "--json",
    ]
    code, out, _ = run_sdl(capsys, argv)
    assert code == 0
    body = json.loads(out)
    assert isinstance(body["epsilon"], float) and body["epsilon"] > 0
    assert isinstance(body["order"], float) and body["order"] > 1


def test_epsilon_grows_with_rounds_through_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    eps = []
    for rounds in ("10", "100", "1000"):
        code, out, _ = run_sdl(
            capsys,
            [
                "privacy",
                "epsilon",
                *GAUSSIAN,
                "--sampling-rate",
                "0.01",
                "--rounds",
                rounds,
                "--delta",
                "1e-5",
                "--json",
            ],
        )
        assert code == 0
        eps.append(json.loads(out)["epsilon"])
    assert eps[0] < eps[1] < eps[2]


@pytest.mark.parametrize(
    "mechanism", [GAUSSIAN, SKELLAM, DGAUSS], ids=["gaussian", "skellam", "dgauss"]
)
def test_calibrate_round_trips(capsys: pytest.CaptureFixture[str], mechanism: list[str]) -> None:
    noise_flag = mechanism[2]
    base = [arg for i, arg in enumerate(mechanism) if i not in (2, 3)]
    argv = [
        "privacy",
        "calibrate",
        *base,
        "--epsilon",
        "2",
        "--delta",
        "1e-5",
        "--rounds",
        "50",
        "--sampling-rate",
        "0.1",
        "--json",
    ]
    code, out, _ = run_sdl(capsys, argv)
    assert code == 0
    body = json.loads(out)
    parameter = noise_flag.removeprefix("--").replace("-", "_")
    noise = body[parameter]
    assert body["epsilon"] <= 2.0
    # Feeding the calibrated noise back gives the same epsilon, just under the target.
    back = [
        "privacy",
        "epsilon",
        *base,
        noise_flag,
        repr(noise),
        "--delta",
        "1e-5",
        "--rounds",
        "50",
        "--sampling-rate",
        "0.1",
        "--json",
    ]
    code, out, _ = run_sdl(capsys, back)
    assert code == 0
    again = json.loads(out)["epsilon"]
    assert again == pytest.approx(body["epsilon"]) and again <= 2.0
    assert again >= 1.95  # the least noise: close to the target


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--delta", "1.5"], "expected a number in (0, 1); got 1.5"),
        (["--delta", "0"], "expected a number in (0, 1); got 0"),
        (["--delta", "1e-5", "--sampling-rate", "0"], "expected a rate in (0, 1]; got 0"),
        (["--delta", "1e-5", "--sampling-rate", "1.2"], "expected a rate in (0, 1]; got 1.2"),
    ],
)
def test_invalid_input_is_a_one_line_error_with_exit_2(
    capsys: pytest.CaptureFixture[str], extra: list[str], needle: str
) -> None:
    code, _, err = run_sdl(capsys, ["privacy", "epsilon", *GAUSSIAN, "--rounds", "10", *extra])
    assert code == 2
    assert needle in err


def test_non_positive_noise_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_sdl(
        capsys,
        [
            "privacy",
            "epsilon",
            "--mechanism",
            "gaussian",
            "--noise-multiplier",
            "-1",
            "--rounds",
            "1",
            "--delta",
            "1e-5",
        ],
    )
    assert code == 2 and "expected a positive finite number; got -1" in err


def test_missing_sensitivities_name_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_sdl(
        capsys,
        [
            "privacy",
            "epsilon",
            "--mechanism",
            "skellam",
            "--variance",
            "100",
            "--rounds",
            "1",
            "--delta",
            "1e-5",
        ],
    )
    assert code == 2
    assert err.strip() == "sdl privacy epsilon: error: --mechanism skellam needs --l2-sensitivity"


def test_missing_noise_names_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_sdl(
        capsys, ["privacy", "epsilon", "--mechanism", "dgauss", "--rounds", "1", "--delta", "1e-5"]
    )
    assert code == 2 and "needs --sigma" in err
