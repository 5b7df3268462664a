"""``sdl deploy``: run the job for real, on Flower's deployment engine.

Spec: spec/15-deployment.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from reference.cli.declare import (
    EXIT_FAILED,
    EXIT_OK,
    JSON,
    Command,
    Example,
    Option,
    report_error,
)
from reference.cli.learning import _MODEL_OPTIONS, _seed_rows
from reference.cli.types import number_where, positive_int
from reference.common.seeds import fresh_seed, seed_from_hex

#: The most SuperNodes ``sdl deploy local`` starts on one machine.
MAX_LOCAL_NODES = 32

#: The options of ``sdl run`` that a deployment takes as they are.
_SHARED = {
    "--rounds", "--epsilon", "--delta", "--mechanism", "--unit", "--threshold", "--colluders",
    "--model", "--partition", "--sampling-rate", "--clip", "--learning-rate", "--committee",
    "--failover",
}  # fmt: skip


def _fault(text: str) -> tuple[int, int]:
    node, at, r = text.partition("@")
    try:
        pair = (int(node), int(r))
    except ValueError:
        pair = (0, 0)
    if at != "@" or pair[0] < 1 or pair[1] < 1:
        raise argparse.ArgumentTypeError(f"expected NODE@ROUND, both >= 1 (e.g. 3@2); got {text!r}")
    return pair


_local_nodes = number_where(
    int, f"an integer in [2, {MAX_LOCAL_NODES}]", lambda v: 2 <= v <= MAX_LOCAL_NODES
)
_seconds = number_where(float, "a number of seconds in [1, 3600]", lambda v: 1 <= v <= 3600)


def _cmd_local(args: argparse.Namespace) -> int:
    from reference.deploy.local import DeployError, local_deployment, run_job  # noqa: PLC0415
    from reference.deploy.task import LearningTask  # noqa: PLC0415
    from reference.learning.job import JobConfig  # noqa: PLC0415
    from reference.learning.outputs import check_outputs  # noqa: PLC0415

    prog = args.command_prog
    check_outputs(args.out)
    for flag, faults in (("--crash", args.crash), ("--restart", args.restart)):
        for node, r in faults:
            if node > args.nodes or r > args.rounds:
                report_error(
                    prog, f"{flag} {node}@{r}: node must be <= --nodes {args.nodes} and round "
                    f"<= --rounds {args.rounds}",
                )  # fmt: skip
                return 2
    seed_text = args.seed if args.seed is not None else fresh_seed().hex()
    cfg = JobConfig(
        seed=seed_from_hex(seed_text), deterministic=args.seed is not None, nodes=args.nodes,
        rounds=args.rounds, epsilon=args.epsilon, delta=args.delta, mechanism=args.mechanism,
        unit=args.unit, threshold=args.threshold, colluders=args.colluders, model=args.model,
        partition=args.partition, sampling_rate=args.sampling_rate, clip=args.clip,
        learning_rate=args.learning_rate, committee=args.committee,
        max_dropouts=args.max_dropouts, precover=not args.no_precover, failover=args.failover,
    )  # fmt: skip
    bar = None if args.quiet else _bar(cfg.rounds)
    started = time.perf_counter()
    seen: list[dict[str, Any]] = []

    def on_event(event: Any) -> None:
        seen.append(dict(event))
        kind = event.get("type")
        if bar is None:
            return
        if kind == "tick":
            bar.set_postfix_str(f"round {event['round']} tick {event['tick']}")
        elif kind in ("released", "aborted"):
            bar.set_postfix(accuracy=f"{event['accuracy']:.3f}", epsilon=f"{event['epsilon']:.2f}")
            bar.update(1)
            if kind == "aborted":
                bar.write(f"round {event['round']} aborted: {event['reason']}")
        elif kind in ("crashed", "killed", "restarted"):
            why = f": {event['why']}" if "why" in event else ""
            bar.write(f"node {event['node']} {kind} in round {event.get('round')}{why}")

    keep = args.keep.resolve() if args.keep is not None else None
    run = None
    try:
        with local_deployment(cfg.nodes, keep=keep) as run:
            pids = {p.name: p.pid for p in run.procs}
            if bar is not None:
                bar.write(
                    f"started a SuperLink on 127.0.0.1:{run.port} and {cfg.nodes} SuperNodes "
                    f"(PIDs {', '.join(str(p) for p in pids.values())})"
                )
            run_job(
                run, LearningTask(cfg), out=args.out, suite=args.suite,
                tick_timeout=args.tick_timeout,
                crash=args.crash, restart=args.restart, on_event=on_event,
            )  # fmt: skip
            started_pids = [p.pid for p in run.procs]
    except DeployError as exc:
        if bar is not None:
            bar.close()
        report_error(prog, str(exc), kind=type(exc).__name__)
        return EXIT_FAILED
    finally:
        if bar is not None:
            bar.close()
        if run is not None and run.left:
            report_error(prog, f"processes {run.left} outlived the deployment", kind="DeployError")
    if run.left:
        return EXIT_FAILED
    obj = json.loads((args.out / "run.json").read_text())
    obj["outputs"] = [str(args.out / "run.json"), str(args.out / "run.png")]
    obj["seed_text"] = seed_text
    obj["processes"] = {"started": started_pids, "stopped": sorted(run.seen)}
    obj["wall_seconds"] = time.perf_counter() - started
    if args.json:
        obj.pop("history")
        print(json.dumps(obj, indent=2, sort_keys=True))
    else:
        _print_table(obj)
    return EXIT_OK


def _bar(total: int) -> Any:
    from tqdm import tqdm  # noqa: PLC0415

    return tqdm(total=total, desc="rounds", unit="round", file=sys.stderr, leave=False)


def _print_table(obj: dict[str, Any]) -> None:
    d = obj["deployment"]
    target = f"{obj['target_epsilon']:g}"
    crashed = ", ".join(str(n) for n in d["crashed"]) or "none"
    absent = ", ".join(f"{n} ({why.split(':')[0]})" for n, why in d["absent"].items()) or "none"
    rows = [
        ("engine", f"Flower: 1 SuperLink, {obj['nodes']} SuperNodes (separate processes)"),
        ("rounds", f"{obj['released_rounds']} released of {obj['rounds']}"),
        ("test accuracy", f"{obj['accuracy']:.4f}"),
        ("ε spent", f"{obj['epsilon']:.4f} at δ = {obj['delta']:g} (target {target})"),
        ("exchanges", f"{d['exchanges']} ({d['bytes_relayed']:,} bytes of sealed frames relayed)"),
        ("crashed", crashed),
        ("left out", absent),
        ("released_sha256", obj["released_sha256"]),
        ("model_sha256", obj["model_sha256"]),
        ("time", f"{obj['wall_seconds']:.1f} s"),
        ("processes", f"{len(obj['processes']['started'])} started, all stopped"),
        *_seed_rows(obj),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    print("SDL on Flower's deployment engine\n")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    print()
    for p in obj["outputs"]:
        print(f"  wrote {p}")


DESCRIPTION = """
    Runs the learning job of `sdl run` for real: one Flower SuperLink and --nodes
    SuperNodes, each its own process, on this machine's loopback interface (insecure mode,
    loopback only). Every node is a ClientApp holding its own data partition, its own
    secret root (drawn from the OS, never sent, printed or written), its identity and
    session keys and its role machines; the ServerApp only relays sealed frames and keeps
    the protocol's clock. It shows per-round progress, prints the accuracy and the ε
    actually spent, and writes run.json and run.png into --out as `sdl run` does, with
    released_sha256 and model_sha256 to compare runs by.

    With --seed the run is a deterministic test mode (not private), and releases exactly
    what `sdl run` with the same options releases: the same released_sha256 and
    model_sha256. --crash NODE@ROUND SIGKILLs that node's SuperNode (and everything under
    it) after it has sent its shares of that round; the round releases without it, or
    aborts with a reason if too many are gone, and the job goes on. --restart NODE@ROUND
    kills it the same way and starts it again at once: the restarted node never restarts a
    round's machines from their initial state; it stays out of the session.

    Every process it starts is stopped by PID, with its descendants, on success, on failure
    and on Ctrl-C. The exit status is 0 only if the job completed.
"""

_LOCAL_OPTIONS = (
    Option(
        ("--nodes",),
        f"SuperNodes to start, each one node holding data (at most {MAX_LOCAL_NODES})",
        type=_local_nodes,
        default=5,
        metavar="N",
    ),
    *(o for o in _MODEL_OPTIONS if o.flags[0] in _SHARED and o.flags[0] != "--rounds"),
    Option(("--rounds",), "training rounds", type=positive_int, default=3, metavar="R"),
    Option(
        ("--max-dropouts",),
        "dropouts (crashed nodes) each round's noise plan withstands (D); more abort the round",
        type=number_where(int, "an integer >= 0", lambda v: v >= 0),
        default=1,
        metavar="D",
    ),
    Option(
        ("--no-precover",),
        "add only the noise that covers no dropout, and top up when nodes drop (each top-up "
        "stage costs several exchanges); by default every node adds, from the start, the "
        "noise that covers D dropouts (sdl run --precover)",
        flag=True,
    ),
    Option(
        ("--crash",),
        "SIGKILL node NODE's SuperNode in round ROUND, after its shares are sent (repeatable)",
        type=_fault,
        repeat=True,
        metavar="NODE@ROUND",
        absent="no node is killed",
    ),
    Option(
        ("--restart",),
        "kill node NODE's SuperNode in round ROUND and start it again at once (repeatable)",
        type=_fault,
        repeat=True,
        metavar="NODE@ROUND",
        absent="no node is restarted",
    ),
    Option(
        ("--suite",),
        "the channels' cipher suite (spec/14-channels.md#suites)",
        choices=("x25519-aes128gcm", "x25519-chacha20poly1305", "mlkem768x25519-aes128gcm"),
        default="x25519-aes128gcm",
    ),
    Option(
        ("--tick-timeout",),
        "seconds a node has to answer one request before it counts as crashed",
        type=_seconds,
        default=30.0,
        metavar="S",
    ),
    Option(
        ("--seed",),
        "1 to 64 hex digits: a deterministic test mode; the nodes' secrets derive from "
        "this public seed, so the run repeats exactly (and equals `sdl run --seed`) and is "
        "not private",
        metavar="HEX",
        absent="a fresh public seed; each node draws its own secret root",
    ),
    Option(
        ("--out",),
        "directory for run.json and run.png, replaced as a pair; checked before anything starts",
        type=Path,
        default=Path("sdl-deploy"),
        metavar="DIR",
        shown_default="./sdl-deploy",
    ),
    Option(
        ("--keep",),
        "keep the deployment's folder (node keys, roster, every process's log) in DIR",
        type=Path,
        metavar="DIR",
        absent="a temporary folder, removed at the end",
    ),
    Option(("--quiet",), "no progress bar", flag=True),
    JSON,
)


def _cmd_keygen(args: argparse.Namespace) -> int:
    from reference.deploy.keys import PUBLIC_FILE, keygen  # noqa: PLC0415

    public = keygen(args.node_dir, args.node)
    obj = {
        "node": args.node,
        "identity": public.hex(),
        "public_file": str(args.node_dir / PUBLIC_FILE),
    }
    if args.json:
        print(json.dumps(obj, sort_keys=True))
    else:
        print(f"node {args.node}: identity {public.hex()}")
        print(f"  secret kept in {args.node_dir / 'identity.key'} (mode 0600; never share it)")
        print(f"  send {obj['public_file']} to whoever assembles the roster")
    return EXIT_OK


def _cmd_roster(args: argparse.Namespace) -> int:
    from reference.common.paths import check_output_file  # noqa: PLC0415
    from reference.deploy.keys import load_public, write_roster  # noqa: PLC0415

    check_output_file(args.out, label="--out")
    keys: dict[int, bytes] = {}
    for path in args.public:
        node, public = load_public(path.parent if path.is_file() else path)
        if node in keys and keys[node] != public:
            report_error(args.command_prog, f"node {node} appears twice with different keys")
            return 2
        keys[node] = public
    digest = write_roster(args.out, keys)
    obj = {"roster": str(args.out), "nodes": sorted(keys), "roster_sha256": digest}
    if args.json:
        print(json.dumps(obj, sort_keys=True))
    else:
        print(f"wrote {args.out}: nodes {', '.join(map(str, sorted(keys)))}")
        print(f"  roster_sha256 {digest}: every operator checks this name out of band")
    return EXIT_OK


def _cmd_config(args: argparse.Namespace) -> int:
    from reference.common.paths import check_output_file  # noqa: PLC0415
    from reference.deploy.keys import load_roster, roster_digest  # noqa: PLC0415
    from reference.deploy.local import APP_DIR, run_config, run_config_toml  # noqa: PLC0415
    from reference.deploy.task import LearningTask  # noqa: PLC0415
    from reference.learning.job import JobConfig  # noqa: PLC0415

    roster = load_roster(args.roster)
    check_output_file(args.out, label="--out")
    seed_text = args.seed if args.seed is not None else fresh_seed().hex()
    cfg = JobConfig(
        seed=seed_from_hex(seed_text), deterministic=args.seed is not None,
        nodes=len(roster.keys), rounds=args.rounds, epsilon=args.epsilon, delta=args.delta,
        mechanism=args.mechanism, unit=args.unit, threshold=args.threshold,
        colluders=args.colluders, model=args.model, partition=args.partition,
        sampling_rate=args.sampling_rate, clip=args.clip, learning_rate=args.learning_rate,
        committee=args.committee, max_dropouts=args.max_dropouts,
        precover=not args.no_precover, failover=args.failover,
    )  # fmt: skip
    if sorted(roster.keys) != list(range(1, cfg.nodes + 1)):
        report_error(args.command_prog, "the roster's nodes must be 1..N with no gap")
        return 2
    config = run_config(
        LearningTask(cfg), roster=args.roster, suite=args.suite, tick_timeout=args.tick_timeout,
        connect_timeout=600.0, progress=args.results / "progress.jsonl", out=args.results,
    )  # fmt: skip
    from reference.common.atomic import write_text_atomically  # noqa: PLC0415

    write_text_atomically(args.out, run_config_toml(config))
    obj = {"run_config": str(args.out), "app": str(APP_DIR), "roster_sha256": roster_digest(roster),
           "deterministic": cfg.deterministic}  # fmt: skip
    if args.json:
        print(json.dumps(obj, sort_keys=True))
    else:
        print(f"wrote {args.out} for a job over the roster's {cfg.nodes} nodes")
        print(f"  run it: flwr run {APP_DIR} CONNECTION --run-config {args.out}")
    return EXIT_OK


_NODE_DIR = Option(
    ("--node-dir",), "the node's directory: identity key, journal", type=Path, required=True,
    metavar="DIR",
)  # fmt: skip

_CONFIG_OPTIONS = (
    Option(("--roster",), "the roster every node holds", type=Path, required=True, metavar="FILE"),
    *(o for o in _LOCAL_OPTIONS if o.flags[0] in (_SHARED | {"--max-dropouts", "--no-precover",
      "--suite", "--tick-timeout", "--seed"})),
    Option(("--results",), "where the ServerApp writes run.json, run.png and its progress (on "
           "the SuperLink's host)", type=Path, default=Path("sdl-deploy"), metavar="DIR"),
    Option(("--out",), "the run configuration file to write", type=Path,
           default=Path("run-config.toml"), metavar="FILE"),
    JSON,
)  # fmt: skip

COMMANDS = (
    Command(
        name="deploy",
        summary="run the job for real: a Flower SuperLink and SuperNodes as processes",
        description="Run SDL on Flower's deployment engine (spec/15-deployment.md).",
        examples=(
            Example("sdl deploy local", "5 SuperNodes, 3 rounds, private"),
            Example("sdl deploy local --nodes 5 --rounds 3 --seed 1 --json", "repeatable"),
        ),
        subcommands=(
            Command(
                name="local",
                summary="start a SuperLink and N SuperNodes on loopback and train on them",
                description=DESCRIPTION,
                options=_LOCAL_OPTIONS,
                examples=(
                    Example("sdl deploy local", "5 nodes, 3 rounds, each node's own secrets"),
                    Example(
                        "sdl deploy local --nodes 5 --rounds 3 --seed 1 --json --quiet",
                        "deterministic (not private): the digests of sdl run --seed 1 "
                        "--nodes 5 --rounds 3 --max-dropouts 1 --precover",
                    ),
                    Example("sdl deploy local --crash 3@2", "node 3 killed in round 2"),
                    Example("sdl deploy local --restart 2@2 --keep ./deploy-logs", "a restart"),
                ),
                run=_cmd_local,
            ),
            Command(
                name="keygen",
                summary="draw a node's identity key into its directory (once per site)",
                description=(
                    "Draws a node's Ed25519 identity from the OS into DIR/identity.key (mode "
                    "0600, never printed) and writes its public half to DIR/identity.pub.json, "
                    "for the roster (spec/15-deployment.md#identities-and-the-roster). A "
                    "directory that already holds an identity is refused."
                ),
                options=(
                    _NODE_DIR,
                    Option(
                        ("--node",),
                        "the node's id in the roster",
                        type=positive_int,
                        required=True,
                        metavar="ID",
                    ),
                    JSON,
                ),
                examples=(Example("sdl deploy keygen --node-dir ./sdl-node --node 3", "site 3"),),
                run=_cmd_keygen,
            ),
            Command(
                name="roster",
                summary="assemble the roster from every node's public identity file",
                description=(
                    "Reads each node's identity.pub.json (a file, or the node directory that "
                    "holds it) and writes the roster every node and the relay hold, with its "
                    "SHA-256 name, which every operator checks out of band."
                ),
                options=(
                    Option(
                        ("public",),
                        "identity.pub.json files or node directories",
                        type=Path,
                        metavar="PUBLIC",
                        many=True,
                    ),
                    Option(
                        ("--out",),
                        "the roster to write",
                        type=Path,
                        default=Path("roster.json"),
                        metavar="FILE",
                    ),
                    JSON,
                ),
                examples=(
                    Example(
                        "sdl deploy roster site*/identity.pub.json --out roster.json",
                        "the consortium's roster",
                    ),
                ),
                run=_cmd_roster,
            ),
            Command(
                name="config",
                summary="write the run configuration of a job over a roster, for flwr run",
                description=(
                    "Writes the TOML file that `flwr run` takes as --run-config: the job's "
                    "public configuration, the roster's path, the suite, the tick timeout and "
                    "where the ServerApp writes its results. It prints the app's folder to "
                    "pass to `flwr run`."
                ),
                options=_CONFIG_OPTIONS,
                examples=(
                    Example(
                        "sdl deploy config --roster roster.json --rounds 20",
                        "then: flwr run APP CONNECTION --run-config run-config.toml",
                    ),
                ),
                run=_cmd_config,
            ),
        ),
    ),
)
