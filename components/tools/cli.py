"""The `servingstack` command.

    servingstack synth (--stack NAME | --config FILE) [--out DIR] [--aws-data FILE]   offline synthesis
    servingstack synth --program DIR [--stack NAME] [--out DIR]     offline synthesis of your own program
    servingstack cost  (--stack NAME | --config FILE)               vLLM vs Triton vs NIM cost table
    servingstack check (--stack NAME | --config FILE) [--out DIR] [--reuse] [--aws-data FILE]
                                                                    synth + schema, semantic and policy checks
    servingstack check --program DIR [--stack NAME] [--out DIR]     the same for your own program
    servingstack advise --model M [--workload K=V,...] [--stack vllm|triton|nim] [--max-monthly-usd X] [--json]
                                                                     hardware x stack options, best per token
    servingstack init NAME --model M [--instance T] [--stack S] [--adopt CLUSTER]   write a stack file
    servingstack diff  --base BASE [--head HEAD] [--stack NAME ...] [--json]
                                                                    what a change creates, replaces, costs, risks
    servingstack --version
    servingstack bench report FILE|DIR ... [--json]                 the benchmark Job's results beside the model

--aws-data FILE answers the program's AWS questions (zones, offerings, quotas, AMI releases, add-on
versions, adopted clusters) from FILE instead of the shipped recording of the stack's region.

Exit codes: 0 ok; 2 config error (one line on stderr, nothing written); 1 anything else, also one
line (an `--out` that cannot take the build; for `check`: any failed check). `diff`: 0 no change, 3
changes without hazards, 4 hazards.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from ..planning import eks
from .project import project_root, stacks_dir

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def resolve_stack(args: argparse.Namespace) -> tuple[Path, str]:
    from .synth import StackFileError, stack_name_for

    if args.config == "":
        raise StackFileError("", "--config '' names no file — give the path of a Pulumi stack file, e.g. "
                                 "stacks/Pulumi.dev.yaml")
    if not args.config and not args.stack:
        raise UsageError("one of --stack, --config or --program is required")
    if args.config and args.stack:
        raise UsageError("--stack and --config exclude each other (--stack names a stack file, --config is one)")
    if args.config:
        path = Path(args.config)
        return path, stack_name_for(path)
    path = stacks_dir(project_root()) / f"Pulumi.{args.stack}.yaml"
    return path, args.stack


class UsageError(ValueError):
    """A command line that cannot work (exit 2)."""


def out_dir(args: argparse.Namespace, default: Path) -> Path:
    """--out, or `default`. Raises OutputError for --out ''."""
    from .outdir import OutputError

    if args.out == "":
        raise OutputError("--out '' names no folder — give the folder to write manifests/, plan.json and "
                          "outputs.json into")
    return default if args.out is None else Path(args.out)


def _add_stack_args(p: argparse.ArgumentParser, program: bool = False) -> None:
    group = p.add_mutually_exclusive_group(required=not program)
    group.add_argument("--config", help="any Pulumi stack file")
    if program:
        group.add_argument("--program", metavar="DIR",
                           help="a Pulumi Python program of your own that uses the components (its folder, with "
                                "Pulumi.yaml); --stack then names its stack (default: its only Pulumi.<stack>.yaml, "
                                "else dev)")
        p.add_argument("--stack", help="stack name: reads <stackConfigDir>/Pulumi.NAME.yaml (of the --program)")
    else:
        group.add_argument("--stack", help="stack name: reads <stackConfigDir>/Pulumi.NAME.yaml")


@functools.lru_cache(maxsize=None)
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="servingstack", description=__doc__.split("\n")[0])
    p.add_argument("--version", action="version", version=f"servingstack {version()}")
    sub = p.add_subparsers(dest="command", required=True)
    synth = sub.add_parser("synth", help="run the program offline under Pulumi's mock runtime and write "
                                         "manifests/, plan.json and outputs.json")
    _add_stack_args(synth, program=True)
    synth.add_argument("--out", help="output directory (default build/<stack>; build/<project>-<stack> with "
                                     "--program)")
    _add_aws_data(synth)
    cost = sub.add_parser("cost", help="compare vLLM, Triton and NIM monthly and first-year cost for a stack")
    _add_stack_args(cost)
    check = sub.add_parser("check", help="synth, then validate the manifests (kubernetes-validate --strict), "
                                         "semantic checks and the policy pack; non-zero exit on any failure")
    _add_stack_args(check, program=True)
    check.add_argument("--out", help="output directory for the synthesized files (default build/<stack>)")
    check.add_argument("--reuse", action="store_true",
                       help="check the files `servingstack synth` already wrote to --out instead of synthesizing again")
    _add_aws_data(check)
    diff = sub.add_parser("diff", help="what a change creates, deletes, updates and replaces in every stack, its "
                                       "monthly cost and GPUs before and after, and its hazards (offline)")
    diff.add_argument("--base", required=True, help="a git ref (synthesized with its own code) or a directory of "
                                                    "builds (<dir>/<stack>/plan.json, as `make synth` writes build/)")
    diff.add_argument("--head", help="a git ref or a directory of builds (default: the working tree's stacks, "
                                     "synthesized now)")
    diff.add_argument("--stack", action="append", dest="stacks", metavar="NAME",
                      help="only this stack (repeatable; default every stack on either side)")
    diff.add_argument("--json", action="store_true", help="the stable JSON form (README) instead of Markdown")
    advise = sub.add_parser("advise", help="every catalogued instance x tensor-parallel size x quantization x stack "
                                           "that fits a model, with cost per token and estimated latency, best first")
    advise.add_argument("--model", required=True, help="catalogued model id, e.g. meta-llama/Llama-3.1-70B-Instruct")
    advise.add_argument("--workload", help="inputTokens=N,outputTokens=N,concurrency=N[,ttftP99Ms=X][,itlP50Ms=X] "
                                           "(servingstack:workload keys; default 1024/256 at 32 concurrent)")
    advise.add_argument("--stack", action="append", help="consider only these serving stacks: vllm, triton, nim "
                                                         "(repeat or comma-separate)")
    advise.add_argument("--max-monthly-usd", type=float, help="drop options whose serving nodes and licences cost more")
    advise.add_argument("--multi-model", action="store_true", help="you serve several model types (LLM + embedding, "
                                                                   "reranker, ...): the rules recommend Triton")
    advise.add_argument("--nvaie-licence", action="store_true", help="you hold an NVIDIA AI Enterprise licence: the "
                                                                     "rules recommend NIM")
    advise.add_argument("--top", type=int, default=12, help="options shown in the table (default 12)")
    advise.add_argument("--json", action="store_true", help='print {"options": [...]} best first, every option')
    check.add_argument("--kubernetes-version", default=eks.DEFAULT_VERSION,
                       help=f"with --program: the cluster's Kubernetes version for the schemas (default "
                            f"{eks.DEFAULT_VERSION}, servingstack's default cluster version)")
    check.add_argument("--environment", default="prod", choices=["dev", "staging", "prod"],
                       help="with --program: the policy pack's enforcement levels (default prod)")
    from .init import add_init_parser

    add_init_parser(sub)
    bench = sub.add_parser("bench", help="the benchmark Job's results (servingstack:benchmark)")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    rep = bench_sub.add_parser("report", help="AIPerf's result files beside the plan-time model, the physical "
                                              "floor, memory-bandwidth utilisation and $ per 1M output tokens")
    rep.add_argument("paths", nargs="+", metavar="FILE|DIR",
                     help="a run directory (benchmarks/<stack>/<timestamp>/, as the Job uploaded it) or AIPerf "
                          "profile_export_aiperf.json files; several runs print side by side")
    rep.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def version() -> str:
    from importlib import metadata

    try:
        return metadata.version("servingstack")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0.0.0+unknown"


def _add_aws_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--aws-data", metavar="FILE", help="recorded AWS answers to use instead of the shipped "
                                                       "recording of the stack's region (shape in the README)")


def load_stack(path: Path, stack: str):
    """Parse and validate a stack file into (StackConfig, notices). Raises ConfigError / StackFileError
    (naming the file, line and column)."""
    from .synth import parse_stack_file

    return parse_stack_file(path, stack)


def cmd_synth(args: argparse.Namespace) -> int:
    from .outdir import preflight
    from .output import summary, write_outputs
    from .synth import check_stack_name, emit_notices, load_stack_file, synth_stack

    if args.program:
        from .programs import default_out, program_summary, synth_program

        result = synth_program(Path(args.program), args.stack, aws_data=args.aws_data)
        out = out_dir(args, default_out(result))
        write_outputs(result, out)
        emit_notices(result.notices)  # only now: a run that fails prints its one error line alone
        print(program_summary(result))
        print(f"wrote {out}/manifests/, {out}/plan.json, {out}/outputs.json")
        return EXIT_OK
    path, stack = resolve_stack(args)
    stack_file = load_stack_file(path)
    check_stack_name(path, stack)
    out = out_dir(args, Path("build") / stack)
    preflight(out)
    result = synth_stack(stack_file, stack, aws_data=args.aws_data)
    write_outputs(result, out)
    emit_notices(result.notices)  # only now: a run that fails prints its one error line alone
    print(summary(result))
    print(f"wrote {out}/manifests/, {out}/plan.json, {out}/outputs.json")
    return EXIT_OK


def cmd_cost(args: argparse.Namespace) -> int:
    from .costreport import cost_table

    path, stack = resolve_stack(args)
    cfg, notices = load_stack(path, stack)
    table = cost_table(cfg, stack)
    for notice in notices:
        print(notice, file=sys.stderr)
    print(table)
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from .check import run_check

    if args.program:
        from .programs import check_program

        return check_program(Path(args.program), args.stack, out_dir(args, None),  # type: ignore[arg-type]
                             args.kubernetes_version, args.environment, args.aws_data)
    path, stack = resolve_stack(args)
    return run_check(path, stack, out_dir(args, Path("build") / stack), reuse=args.reuse, aws_data=args.aws_data)


def cmd_diff(args: argparse.Namespace) -> int:
    from .diff import run

    return run(args.base, args.head, args.stacks, args.json)


def cmd_advise(args: argparse.Namespace) -> int:
    from . import advise

    model = advise.check_model(args.model)
    workload = advise.parse_workload(args.workload)
    stacks = advise.check_stacks(args.stack)
    found = advise.options(model, workload, stacks, args.max_monthly_usd)
    if args.json:
        sys.stdout.write(advise.json_document(found))
        return EXIT_OK
    rule_lines, recommended = advise.rules(model, args.multi_model, args.nvaie_licence)
    if recommended not in stacks:
        recommended = stacks[0]
    print(advise.render(model, workload, found, rule_lines, recommended, args.top))
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    import json

    from .benchreport import BenchReportError, report
    from .benchtable import render

    try:
        doc = report(args.paths)
    except BenchReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.json:
        sys.stdout.write(json.dumps(_finite(doc), indent=2, sort_keys=True, allow_nan=False) + "\n")
    else:
        sys.stdout.write(render(doc))
    return EXIT_OK


def _finite(value: object) -> object:
    """JSON has no Infinity/NaN: an unbounded figure (no throughput, no cost per token) becomes null."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run a command; every failure ends as one line on stderr: exit 2 for a config, stack-file,
    --config or usage problem, 1 for an --out problem or anything else."""
    import pulumi

    from ..config import ConfigError
    from ..config.errors import one_line
    from .init import InitError, cmd_init
    from .outdir import OutputError
    from .programs import ProgramError
    from .offline.awsdata import AwsDataError
    from .synth import StackFileError

    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    args.argv = argv
    handler = {"synth": cmd_synth, "cost": cmd_cost, "check": cmd_check, "advise": cmd_advise,
               "init": cmd_init, "diff": cmd_diff, "bench": cmd_bench}[args.command]
    try:
        return handler(args)
    except (ConfigError, StackFileError, AwsDataError, ProgramError, InitError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except pulumi.ConfigMissingError as exc:  # a program's required config the stack does not set
        print(f"error: {exc.key}: missing required configuration — set it in the stack file (`pulumi config set "
              f"{'--secret ' if exc.secret else ''}{exc.key} <value>`)", file=sys.stderr)
        return EXIT_CONFIG
    except pulumi.RunError as exc:  # raised by a program (the Pulumi CLI prints these without a traceback)
        print(f"error: {one_line(str(exc), 900)}", file=sys.stderr)
        return EXIT_FAILED
    except OutputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"error: {one_line(str(exc), 400)}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - a bug: one line, the traceback on request
        if os.environ.get("SERVINGSTACK_TRACEBACK"):
            raise
        print(f"error: internal error ({type(exc).__name__}: {one_line(str(exc), 300)}) — please report it; "
              "SERVINGSTACK_TRACEBACK=1 shows the traceback", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
