"""The oracle kit's subcommands of ``sdl``: vectors generate|check, conformance.

Spec: spec/10-test-vectors.md; spec/11-conformance.md
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from reference.cli.declare import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    JSON,
    Command,
    Example,
    Option,
    report_error,
)
from reference.cli.declare import emit as _emit
from reference.cli.types import (
    positive_seconds,
)
from reference.oracle import conformance, vectors

# ---------------------------------------------------------------------- vectors

#: The families ``sdl vectors generate`` writes, one folder each.
_FAMILIES_TEXT = ", ".join(vectors.FAMILIES)


def _cmd_vectors_generate(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    prog = args.command_prog
    try:
        # Refuse in milliseconds, before the seconds generation takes.
        vectors.check_writable(directory, force=args.force)
        written = vectors.write(directory, vectors.generate(), force=args.force)
    except vectors.WriteRefused as exc:
        report_error(prog, str(exc))
        return EXIT_USAGE
    except OSError as exc:
        report_error(prog, f"cannot write into {directory}: {exc.strerror or exc}")
        return EXIT_USAGE
    if args.json:
        _emit({"directory": str(directory), "files": [str(p) for p in written]})
    else:
        print(f"wrote {len(written)} vector files under {directory}/ ({_FAMILIES_TEXT})")
    return EXIT_OK


def _cmd_vectors_check(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    if not directory.is_dir():
        report_error(args.command_prog, f"{directory} is not a directory")
        return EXIT_USAGE
    results = vectors.check(directory)
    if not results:
        report_error(args.command_prog, f"no *.json vector files under {directory}", kind="failed")
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


def _print_conformance(report: conformance.Report) -> None:
    print(f"conformance of: {report.command}")
    print(f"{'operation':<22}{'status':<13}{'pass':>6}{'fail':>6}{'unsup':>7}")
    for r in report.ops.values():
        print(f"{r.op:<22}{r.status:<13}{r.passed:>6}{r.failed:>6}{r.unsupported:>7}")
        if r.first_mismatch:
            print(f"    first mismatch: {r.first_mismatch}")
    if report.exited:
        status = "" if report.exit_status is None else f" with status {report.exit_status}"
        print(f"the implementation exited{status}; the last lines of its stderr:")
        for line in report.stderr_tail or ["(nothing)"]:
            print(f"    {line}")
    print("all supported operations pass" if report.ok else "FAILED")


def _cmd_conformance(args: argparse.Namespace) -> int:
    try:
        report = conformance.run(args.impl, timeout=args.timeout)
    except conformance.ConformanceStartError as exc:
        report_error(args.command_prog, str(exc))
        return EXIT_USAGE
    if args.json:
        _emit(report.to_json())
    else:
        _print_conformance(report)
    return EXIT_OK if report.ok else EXIT_FAILED


_VECTORS = Command(
    name="vectors",
    summary="generate or check test vectors",
    description="""
        Test vectors are JSON files, one operation each, with inputs and expected outputs;
        negative cases (*_bad_<fault>.json) name the typed error expected. The format is in
        spec/10-test-vectors.md.
    """,
    examples=(
        Example("sdl vectors generate /tmp/sdl-vectors", "write every vector file"),
        Example("sdl vectors check spec/vectors", "check the published vectors"),
    ),
    subcommands=(
        Command(
            name="generate",
            summary="write every vector file into DIR",
            description=f"""
                Write every vector family ({_FAMILIES_TEXT}) into DIR/<family>/, replacing
                those folders atomically: the files are first written to a temporary folder
                in DIR, and only when all are written are the family folders swapped in.
                DIR/{vectors.MANIFEST} records what was written. A family folder that
                already exists is replaced only if every file in it was written by sdl
                (listed in that manifest, or a vector file of that family); otherwise
                nothing is written and the command exits 2 naming the folder. Other files
                in DIR are left alone.
            """,
            options=(
                Option(("dir",), "the directory to write into (created if missing)", metavar="DIR"),
                Option(
                    ("--force",),
                    "replace the family folders even if they hold files sdl did not write"
                    " (those files are deleted)",
                    flag=True,
                ),
                Option(("--json",), "print the written files as one JSON object", flag=True),
            ),
            examples=(
                Example("sdl vectors generate /tmp/sdl-vectors", "write every family"),
                Example(
                    "sdl vectors generate /tmp/sdl-vectors --json", "the files written, as JSON"
                ),
            ),
            run=_cmd_vectors_generate,
        ),
        Command(
            name="check",
            summary="recompute and compare every vector file under DIR",
            description="""
                Recompute every expected output from each file's inputs. Prints a pass/fail
                table naming each mismatching field, then a count per family. Exits 0 when
                every file passes, 1 on any failure or when DIR holds no vector files, 2 when
                DIR is not a directory.
            """,
            options=(
                Option(("dir",), "the directory of *.json vector files to check", metavar="DIR"),
                Option(("--json",), "print the results as one JSON object", flag=True),
            ),
            examples=(
                Example("sdl vectors check spec/vectors", "check the published vectors"),
                Example("sdl vectors check spec/vectors --json", "the same, as JSON"),
            ),
            run=_cmd_vectors_check,
        ),
    ),
)

_CONFORMANCE = Command(
    name="conformance",
    summary="check another implementation of sections 2-4 over a stdio harness",
    description="""
        Start COMMAND (no shell), send it one JSON-lines request per operation
        (spec/11-conformance.md) and compare each answer with the reference's. Prints one
        row per operation: pass, fail or unsupported, with the first mismatch. If the
        implementation exits early, the report shows its exit status and the last lines of
        its stderr. Exits 0 when every supported operation passes, 1 if any fails, 2 if
        COMMAND cannot start.
    """,
    options=(
        Option(
            ("--impl",),
            "the implementation's command line, split like a shell would (no shell runs it)",
            metavar="COMMAND",
            required=True,
        ),
        Option(
            ("--timeout",),
            "seconds to wait for each answer",
            type=positive_seconds,
            default=conformance.DEFAULT_TIMEOUT,
            metavar="SECONDS",
            shown_default=f"{conformance.DEFAULT_TIMEOUT:g}",
        ),
        JSON,
    ),
    examples=(
        Example(
            'sdl conformance --impl "node tests/interop/sdl_consumer.mjs serve"',
            "check the JavaScript consumer",
        ),
        Example(
            'sdl conformance --impl "node tests/interop/sdl_consumer.mjs serve" --json',
            "the same, as one JSON object",
        ),
    ),
    run=_cmd_conformance,
)

COMMANDS = (_VECTORS, _CONFORMANCE)
