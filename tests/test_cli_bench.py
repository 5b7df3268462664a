"""``sdl bench``'s declared commands: every help complete, every example valid as written.

Spec: spec/README.md (the command line is informative)
"""

from __future__ import annotations

import json
import shlex

import pytest

from protocol.channels import DEFAULT_SUITE, SUITES
from reference.cli import bench as cli_bench
from reference.cli.declare import Command, walk
from reference.cli.main import build_parser, main


def find(path: tuple[str, ...]) -> Command:
    commands = cli_bench.COMMANDS
    found = None
    for name in path:
        found = next(c for c in commands if c.name == name)
        commands = found.subcommands
    assert found is not None
    return found


PATHS = walk(cli_bench.COMMANDS)


def test_bench_is_one_declared_group_of_four() -> None:
    assert not hasattr(cli_bench, "add_parsers")
    assert PATHS == [
        ("bench", "shamir"), ("bench", "accounting"), ("bench", "round"), ("bench", "deploy")
    ]  # fmt: skip


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_every_option_has_help_and_every_command_a_description(path: tuple[str, ...]) -> None:
    command = find(path)
    assert command.description.strip()
    for option in command.options:
        assert option.help.strip(), option.flags


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_help_speaks_of_the_product(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*path, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "Examples:" in text
    assert "issue" not in text.lower()


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_every_example_parses_as_written(path: tuple[str, ...]) -> None:
    parser = build_parser()
    command = find(path)
    assert command.examples
    for example in command.examples:
        argv = shlex.split(example.command)
        assert argv[0] == "sdl"
        args = parser.parse_args(argv[1:])
        assert args.func is command.run


def test_quick_shamir_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    quick = "sdl bench shamir --dimension 10000 --galois-dimension 0"
    assert quick in [e.command for e in find(("bench", "shamir")).examples]
    assert main([*shlex.split(quick)[1:], "--repeats", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dimension"] == 10000


def test_accounting_options_keep_their_defaults() -> None:
    args = build_parser().parse_args(["bench", "accounting"])
    assert (args.rounds, args.sampling_rate, args.noise_multiplier, args.repeats) == (
        1000,
        0.01,
        1.1,
        5,
    )
    assert args.json is False


PLD_KEYS = {
    "rounds",
    "delta",
    "discretization",
    "repeats",
    "sdl_seconds",
    "dp_accounting_seconds",
    "ratio",
    "epsilon_sdl",
    "epsilon_dp_accounting",
    "relative_difference",
    "epsilons_agree",
}


def test_accounting_times_sdl_pld_beside_dp_accounting_pld_and_their_epsilons_agree(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["bench", "accounting", "--rounds", "10", "--repeats", "1"]
    assert main([*argv, "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert {"sdl", "sdl_epsilon", "dp_accounting_rdp", "dp_accounting_epsilon"} <= body.keys()
    assert {"ratio_sdl_over_dp_accounting", "target_seconds_at_most"} <= body.keys()
    pld = body["pld"]
    assert body["pld_refusal"] is None
    assert set(pld) == PLD_KEYS
    assert (pld["rounds"], pld["repeats"], pld["delta"]) == (10, 1, 1e-5)
    assert pld["epsilon_sdl"] > 0
    assert pld["epsilon_sdl"] == pytest.approx(pld["epsilon_dp_accounting"], rel=1e-9, abs=0)
    assert pld["relative_difference"] <= 1e-9 and pld["epsilons_agree"] is True
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert text.startswith("epsilon of 10 Poisson-subsampled Gaussian rounds")
    assert "\ntarget: <= 50 ms for 1000 subsampled rounds\n" in text
    assert "  SDL PLD  " in text and "  dp-accounting PLD  " in text
    assert "the two epsilons agree" in text


def test_accounting_says_why_when_the_pld_accountant_refuses_the_rounds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["bench", "accounting", "--rounds", "100", "--sampling-rate", "1"]
    assert main([*argv, "--noise-multiplier", "1e-6", "--repeats", "1", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["pld"] is None
    assert "buckets" in body["pld_refusal"] and "use the RDP accountant" in body["pld_refusal"]


def test_round_seals_by_default_and_names_every_suite() -> None:
    parser = build_parser()
    args = parser.parse_args(["bench", "round"])
    assert (args.channels, args.suite) == ("sealed", DEFAULT_SUITE.name)
    for name in SUITES:
        assert parser.parse_args(["bench", "round", "--suite", name]).suite == name
    assert parser.parse_args(["bench", "round", "--channels", "plain"]).channels == "plain"


def test_round_defaults_shrink_to_fit_a_small_n_and_say_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--nodes 5 alone runs: the design's defaults (committee 35, t 10, …) shrink to fit it."""
    assert main(["bench", "round", "--nodes", "5", "--dimension", "100", "--json"]) == 0
    out, err = capsys.readouterr()
    body = json.loads(out)
    assert body["config"]["nodes"] == 5 and body["config"]["committee"] == 5
    assert "the defaults shrink to fit --nodes 5" in err and "committee 35→5" in err


def test_a_given_round_parameter_is_never_shrunk(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "round", "--nodes", "5", "--dimension", "100", "--committee", "35"])
    err = capsys.readouterr().err
    assert code == 2
    assert "committee 35→5" not in err
    assert err.strip().splitlines()[-1] == (
        "sdl bench round: error: committee must be an int in [1, 5]; got 35"
    )
