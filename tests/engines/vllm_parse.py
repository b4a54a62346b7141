"""Run inside a vLLM release's own virtualenv (`make engines`): parse command lines with that
release's real argument parser, exactly as its server entrypoint does, and report per variant.

Usage: python vllm_parse.py OUT.json < request.json (vLLM logs to stdout, so the result goes to a file).
Input (stdin, JSON): {"variants": [{"id": str, "command": [str], "args": [str]}], "fields": [str]}
  command [] = the image's ENTRYPOINT `python3 -m vllm.entrypoints.openai.api_server` (0.8.x);
  command ["vllm", "serve"] = the `vllm serve` CLI (vllm/entrypoints/cli/main.py).
Output (OUT.json): {"version": str, "results": {id: {"ok": bool, "error": str, "engine": {...}}},
  "registries": {...}} where engine holds the requested AsyncEngineArgs fields after
  AsyncEngineArgs.from_cli_args, and registries the release's own lists of accepted values.

Nothing here re-implements vLLM: it imports the release's modules and calls them. The CPU platform
stands in for CUDA only where vLLM itself does so (vllm/entrypoints/cli/main.py, `vllm bench`):
parser construction needs a platform, flag names and values do not depend on it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.metadata
import io
import json
import sys
import typing


def _use_cpu_platform_if_unspecified() -> None:
    from vllm import platforms

    current = platforms.current_platform
    if getattr(current, "is_unspecified", lambda: False)():
        with contextlib.suppress(Exception):
            from vllm.platforms.cpu import CpuPlatform
            platforms.current_platform = CpuPlatform()


def _parsers():
    """(parse(command, args) -> Namespace) for this release, built as its entrypoints build them."""
    from vllm.engine.arg_utils import AsyncEngineArgs

    try:
        from vllm.utils.argparse_utils import FlexibleArgumentParser
    except ImportError:
        from vllm.utils import FlexibleArgumentParser

    cache: dict = {}

    def api_server():
        from vllm.entrypoints.openai.cli_args import make_arg_parser, validate_parsed_serve_args
        parser = make_arg_parser(FlexibleArgumentParser(description="vLLM OpenAI-Compatible RESTful API server."))
        return lambda args: _validated(parser.parse_args(args), validate_parsed_serve_args)

    def vllm_serve():
        from vllm.entrypoints.cli.serve import ServeSubcommand
        top = FlexibleArgumentParser(description="vLLM CLI")
        subparsers = top.add_subparsers(required=False, dest="subparser")
        cmd = ServeSubcommand()
        cmd.subparser_init(subparsers).set_defaults(dispatch_function=cmd.cmd)

        def parse(args):
            ns = top.parse_args(["serve", *args])
            cmd.validate(ns)
            if getattr(ns, "model_tag", None) is not None:  # ServeSubcommand.cmd does this first
                ns.model = ns.model_tag
            return ns
        return parse

    def parse(command: list[str], args: list[str]):
        key = tuple(command)
        if key not in cache:
            cache[key] = {(): api_server, ("vllm", "serve"): vllm_serve}[key]()
        return cache[key](args)

    return parse, AsyncEngineArgs


def _validated(ns, validate):
    validate(ns)
    return ns


def _registries() -> dict:
    out: dict = {}
    from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS
    out["quantization"] = sorted(QUANTIZATION_METHODS)
    with contextlib.suppress(ImportError, AttributeError):
        from vllm.model_executor.model_loader import LoadFormats
        out["load_format"] = sorted(typing.get_args(LoadFormats))
    if "load_format" not in out:
        with contextlib.suppress(ImportError, AttributeError):
            from vllm.config import LoadFormat
            out["load_format"] = sorted(f.value for f in LoadFormat)
    from vllm.engine.arg_utils import EngineArgs
    kv = {f.name: f.type for f in dataclasses.fields(EngineArgs)}.get("kv_cache_dtype")
    literals = [a for t in typing.get_args(kv) or () for a in (typing.get_args(t) if typing.get_origin(t) is typing.Literal else ())]
    if literals:
        out["kv_cache_dtype"] = sorted(literals)
    config = importlib.import_module("vllm.config")
    spec = getattr(config, "SpeculativeConfig")
    out["speculative_config_fields"] = sorted(f.name for f in dataclasses.fields(spec))
    method = {f.name: f.type for f in dataclasses.fields(spec)}.get("method")
    methods = [a for t in (typing.get_args(method) or ()) for a in (typing.get_args(t) if typing.get_origin(t) is typing.Literal else ())]
    if not methods:
        with contextlib.suppress(ImportError, AttributeError):
            methods = list(typing.get_args(importlib.import_module("vllm.config.speculative").SpeculativeMethod))
    out["speculative_methods"] = sorted(methods)
    import vllm.envs as envs
    out["env_vars"] = sorted(envs.environment_variables)
    return out


def main() -> None:
    request = json.load(sys.stdin)
    _use_cpu_platform_if_unspecified()
    parse, engine_args = _parsers()
    results = {}
    for variant in request["variants"]:
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                ns = parse(variant["command"], variant["args"])
                engine = engine_args.from_cli_args(ns)
            values = {f: getattr(engine, f, None) for f in request.get("fields", [])}
            results[variant["id"]] = {"ok": True, "error": "", "engine": json.loads(json.dumps(values, default=str))}
        except SystemExit as exc:  # argparse: exit 2 with its message on stderr
            results[variant["id"]] = {"ok": False, "error": f"exit {exc.code}: {err.getvalue().strip().splitlines()[-1:]}",
                                      "engine": {}}
        except Exception as exc:  # noqa: BLE001 - validation errors of the release itself
            results[variant["id"]] = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "engine": {}}
    with open(sys.argv[1], "w") as out:
        json.dump({"version": importlib.metadata.version("vllm"), "results": results, "registries": _registries()}, out)


if __name__ == "__main__":
    main()
