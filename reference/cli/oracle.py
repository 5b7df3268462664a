"""The oracle kit's subcommands of ``sdl``: vectors generate|check, conformance.

Spec: spec/10-test-vectors.md; spec/11-conformance.md
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from reference.cli.declare import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Subparsers
from reference.cli.declare import emit as _emit
from reference.cli.types import (
    _positive_seconds,
)
from reference.oracle import conformance, vectors

# ---------------------------------------------------------------------- vectors


def _cmd_vectors_generate(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    written = vectors.write(directory, vectors.generate())
    if args.json:
        _emit({"directory": str(directory), "files": [str(p) for p in written]})
    else:
        print(
            f"wrote {len(written)} vector files under {directory}/ ({', '.join(vectors.FAMILIES)})"
        )
    return EXIT_OK


def _cmd_vectors_check(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    if not directory.is_dir():
        print(f"sdl: error: {directory} is not a directory", file=sys.stderr)
        return EXIT_USAGE
    results = vectors.check(directory)
    if not results:
        print(f"sdl: error: no *.json vector files under {directory}", file=sys.stderr)
        return EXIT_FAILED
    failed = [r for r in results if not r.ok]
    if args.json:
        _emit(
            {
                "directory": str(directory),
                "passed": len(results) - len(failed),
                "failed": len(failed),
                "files": [asdict(r) | {"ok": r.ok} for r in results],
            }
        )
    else:
        width = max(len(r.path) for r in results)
        print(f"{'file'.ljust(width)}  family  operation           result")
        for r in results:
            status = "pass" if r.ok else "FAIL"
            print(f"{r.path.ljust(width)}  {r.family:<6}  {r.operation:<18}  {status}")
            for problem in r.problems:
                print(f"{'':{width}}    - {problem}")
        families = sorted({r.family for r in results})
        print()
        for fam in families:
            mine = [r for r in results if r.family == fam]
            bad = sum(not r.ok for r in mine)
            print(f"{fam:<8} {len(mine) - bad} passed, {bad} failed")
        print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return EXIT_FAILED if failed else EXIT_OK


# ---------------------------------------------------------------------- conformance


def _cmd_conformance(args: argparse.Namespace) -> int:
    try:
        report = conformance.run(args.impl, timeout=args.timeout)
    except conformance.ConformanceStartError as exc:
        print(f"sdl: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        _emit(report.to_json())
    else:
        print(f"conformance of: {report.command}")
        print(f"{'operation':<22}{'status':<13}{'pass':>6}{'fail':>6}{'unsup':>7}")
        for r in report.ops.values():
            print(f"{r.op:<22}{r.status:<13}{r.passed:>6}{r.failed:>6}{r.unsupported:>7}")
            if r.first_mismatch:
                print(f"    first mismatch: {r.first_mismatch}")
        print("all supported operations pass" if report.ok else "FAILED")
    return EXIT_OK if report.ok else EXIT_FAILED


def add_parsers(sub: Subparsers, **_: object) -> None:
    vec = sub.add_parser(
        "vectors",
        help="generate or check test vectors",
        description=(
            "Test vectors are JSON files, one operation each, with inputs and expected "
            "outputs; negative cases (*_bad_<fault>.json) name the typed error expected. "
            "The format is in spec/10-test-vectors.md."
        ),
    )
    vsub = vec.add_subparsers(dest="vectors_command", required=True, metavar="ACTION")
    gen = vsub.add_parser(
        "generate",
        help="write every vector file into DIR",
        description="Write every vector family (field, xof, shamir, encoding, noise, "
        "noise_plan) into DIR/<family>/, replacing those folders atomically.",
    )
    gen.add_argument("dir", metavar="DIR")
    gen.add_argument("--json", action="store_true", help="print the written files as JSON")
    gen.set_defaults(func=_cmd_vectors_generate)
    chk = vsub.add_parser(
        "check",
        help="recompute and compare every vector file under DIR",
        description="Recompute every expected output from each file's inputs. Prints a "
        "pass/fail table naming each mismatching field; exits 1 on any failure.",
    )
    chk.add_argument("dir", metavar="DIR")
    chk.add_argument("--json", action="store_true", help="print the results as JSON")
    chk.set_defaults(func=_cmd_vectors_check)
    conf = sub.add_parser(
        "conformance",
        help="check another implementation of sections 2-4 over a stdio harness",
        description=(
            "Start COMMAND (no shell), send it one JSON-lines request per operation "
            "(spec/11-conformance.md) and compare each answer with the reference's. "
            "Exits 1 if any supported operation fails, 2 if COMMAND cannot start."
        ),
    )
    conf.add_argument("--impl", required=True, metavar="COMMAND", help="the command to run")
    conf.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=conformance.DEFAULT_TIMEOUT,
        help=f"seconds to wait for each answer (default {conformance.DEFAULT_TIMEOUT:g})",
    )
    conf.add_argument("--json", action="store_true", help="print one JSON object")
    conf.set_defaults(func=_cmd_conformance)
