"""Issue 19's fuzz corpus: at least 1,500 mutated stack files, generated with hypothesis from the
shipped stacks over the issue's classes (broken bytes and YAML, deep nesting and alias bombs,
duplicate and near-miss keys and namespaces, hostile scalars in every leaf, odd values under other
tools' namespaces, and the semantic classes: CIDRs, namespaces, tags, labels, arguments, names,
numbers, engine pairs), each run through the CLI entry point in-process
(`servingstack.tools.cli.main(["synth", "--config", FILE, "--out", DIR])`) under a per-case deadline.

Every case must end in exit 0 (outputs written) or exit 2 with exactly one stderr line of bounded
length and nothing written; no traceback, no hang, no other exit code. The generation is
derandomized (the same corpus on every run, in CI too) and keeps the accepted cases few, since each
one runs a whole synthesis.
"""

from __future__ import annotations

import copy
import hashlib
import io
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from hardening import MAX_ERROR_LINE, ROOT, Timeout, deadline
from servingstack.tools import cli

CORPUS_SIZE = 1500
CASE_SECONDS = 30.0
STACKS = ["prod", "staging", "dev", "dev-small"]
TEXTS = {s: (ROOT / "stacks" / f"Pulumi.{s}.yaml").read_text() for s in STACKS}
CONFIGS = {s: yaml.safe_load(t)["config"] for s, t in TEXTS.items()}

HOSTILE = [
    "", " ", "\n", "a\nb", "\t", "\x00", "\x1b[2J", "\u202e", "é", "😀", "١٢٣", "1.33\n", "0.0.0.0/0", "0.0.0.0/00",
    "10.0.0.1/16", "kube-system", "default", "aws:x", "${x}", "../../etc/passwd", "%s%n", "' OR 1=1", "yes", "on",
    "null", "~", "-", "--", "8llm", "my..models", "x" * 300, "y" * 100_000, -1, 0, 1, 2**31, 2**63, 2**64, 10**30,
    -(2**63) - 1, 0.5, -0.0, 1e308, float("inf"), float("-inf"), float("nan"), 1e-300, True, False, None, [], {},
    [None], [[[]]], {"": ""}, {"a": {"b": {"c": {}}}}, ["a\nb"], [""] * 3, list(range(100)),
]
OTHER_NAMESPACE_LINES = [
    "myapp:releaseDate: 2024-06-01", "myapp:blob: !!binary aGVsbG8=", "myapp:set: !!set {a, b}",
    "myapp:keys: {8080: http, true: x, ~: y, 1.5: z}", "myapp:time: 2001-12-14t21:59:43.10-05:00",
    "myapp:big: 123456789012345678901234567890", "myapp:float: .inf", "myapp:nan: .NaN", "myapp:tag: !custom value",
    "myapp:omap: !!omap [a: 1, b: 2]", "myapp:octal: 0o17", "myapp:hex: 0xFF", "myapp:str: !!str 123",
    "myapp:merge: {<<: {a: 1}, b: 2}", "awsx:vpc: {cidr: 10.0.0.0/16}", "kubernetes:context: other",
]


def leaves(value: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in leaves(v, (*path, k))] or [path]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in leaves(v, (*path, i))] or [path]
    return [path]


def set_at(root: Any, path: tuple, value: Any) -> None:
    for part in path[:-1]:
        root = root[part]
    root[path[-1]] = value


DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's emitter when PyYAML has it: faster


def dump(config: dict) -> str:
    return yaml.dump({"config": config}, Dumper=DUMPER, sort_keys=False, allow_unicode=True, width=1 << 30)


def near_miss(word: str, draw) -> str:
    kind = draw(st.sampled_from(["drop", "swap", "case", "double", "sub"]))
    i = draw(st.integers(0, max(0, len(word) - 2)))
    if kind == "drop":
        return word[:i] + word[i + 1:]
    if kind == "swap":
        return word[:i] + word[i + 1:i + 2] + word[i:i + 1] + word[i + 2:]
    if kind == "case":
        return word[:i] + word[i:i + 1].swapcase() + word[i + 1:]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    return word[:i] + draw(st.sampled_from("xzq_-.")) + word[i + 1:]


# ---- the mutation classes --------------------------------------------------------------------------

@st.composite
def bytes_and_yaml(draw, text: str) -> bytes:
    """Broken bytes or YAML syntax inside the config's key lines (not in comments, where they are
    harmless), a truncated file, a byte-order mark inside."""
    lines = text.splitlines(keepends=True)
    keyed = [i for i, line in enumerate(lines) if ":" in line and not line.lstrip().startswith("#")]
    i = draw(st.sampled_from(keyed))
    line = lines[i]
    indent = len(line) - len(line.lstrip())
    at = draw(st.integers(indent, max(indent, len(line.split("#")[0].rstrip()) - 1)))
    kind = draw(st.sampled_from(["non-utf8", "control", "syntax", "truncate", "bom-inside"]))
    before = "".join(lines[:i]).encode() + line[:at].encode()
    after = line[at:].encode() + "".join(lines[i + 1:]).encode()
    if kind == "non-utf8":
        return before + draw(st.sampled_from([b"\xff", b"\xe9", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88"])) + after
    if kind == "control":
        return before + draw(st.sampled_from(["\x00", "\x07", "\x1b", "\ufffe", "\x7f"])).encode() + after
    if kind == "syntax":
        return before + draw(st.sampled_from(list(b"[]{}&*!%@`|>'\"?,"))).to_bytes(1, "big") + after
    if kind == "truncate":
        return before
    return before + b"\xef\xbb\xbf" + after


@st.composite
def structure(draw, text: str) -> str:
    """Deep nesting, alias bombs and self-references, merge keys, duplicate keys, long keys."""
    kind = draw(st.sampled_from(["deep", "bomb", "loop", "duplicate", "long-key", "merge", "multi-doc"]))
    head, sep, tail = text.partition("\nconfig:\n")
    namespace = draw(st.sampled_from(["myapp:x", "servingstack:serving", "servingstack:tags"]))
    if kind == "deep":
        n = draw(st.integers(30, 3000))
        opener, closer = draw(st.sampled_from([("[", "]"), ("{a: ", "}")]))
        return head + sep + f"  {namespace}: {opener * n}1{closer * n}\n" + tail
    if kind == "bomb":
        width, depth = draw(st.integers(2, 12)), draw(st.integers(3, 12))
        lines = [f"    l0: &l0 [{', '.join(['lol'] * width)}]"] + [
            f"    l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, depth)]
        return head + sep + f"  servingstack:bomb:\n" + "\n".join(lines) + "\n" + tail
    if kind == "loop":
        return head + sep + f"  {namespace}: &loop [*loop]\n" + tail
    if kind == "duplicate":
        lines = text.splitlines(keepends=True)
        keyed = [i for i, line in enumerate(lines) if ":" in line and not line.lstrip().startswith(("#", "-"))
                 and line.startswith("  ")]
        i = draw(st.sampled_from(keyed))
        return "".join(lines[:i + 1] + [lines[i]] + lines[i + 1:])
    if kind == "long-key":
        n = draw(st.sampled_from([200, 1100, 50_000]))
        return text.replace("    replicas:", f"    {'k' * n}: 1\n    replicas:", 1) if "    replicas:" in text else \
            head + sep + f"  servingstack:{'k' * n}: 1\n" + tail
    if kind == "merge":
        return head + sep + "  servingstack:serving: {<<: {replicas: 1}, <<: [*nope]}\n" + tail
    return text + "\n---\nconfig: {}\n"


@st.composite
def keys_and_namespaces(draw, config: dict) -> str:
    cfg = copy.deepcopy(config)
    kind = draw(st.sampled_from(["namespace", "top-key", "nested-key", "no-namespace", "non-string-key"]))
    keys = [k for k in cfg if k.startswith(("servingstack:", "aws:"))]
    key = draw(st.sampled_from(keys))
    ns, _, name = key.partition(":")
    if kind == "namespace":
        new = f"{near_miss(ns, draw)}:{name}"
    elif kind == "top-key":
        new = f"{ns}:{near_miss(name, draw)}"
    elif kind == "no-namespace":
        new = name
    elif kind == "non-string-key":
        cfg[draw(st.sampled_from([8080, True, None, 1.5]))] = "x"
        return dump(cfg)
    else:
        nested = [p for p in leaves(cfg[key]) if p and isinstance(p[-1], str)] if isinstance(cfg[key], dict) else []
        if not nested:
            new = f"{ns}:{near_miss(name, draw)}"
        else:
            path = draw(st.sampled_from(nested))
            parent = cfg[key]
            for part in path[:-1]:
                parent = parent[part]
            parent[near_miss(path[-1], draw)] = parent.pop(path[-1])
            return dump(cfg)
    if new == key:
        new = key + "x"
    cfg[new] = cfg.pop(key)
    return dump(cfg)


@st.composite
def hostile_leaf(draw, config: dict) -> str:
    cfg = copy.deepcopy(config)
    paths = [p for p in leaves(cfg) if p and str(p[0]).startswith("servingstack:")]
    for _ in range(draw(st.integers(2, 4))):
        path = draw(st.sampled_from(paths))
        value = draw(st.sampled_from(HOSTILE) | st.text(max_size=40) | st.integers() | st.floats())
        try:
            set_at(cfg, path, copy.deepcopy(value))
        except (TypeError, IndexError, KeyError):
            pass
    return dump(cfg)


def cidr() -> st.SearchStrategy[str]:
    return st.builds(lambda a, b, c, d, p: f"{a}.{b}.{c}.{d}/{p}", st.integers(0, 300), st.integers(0, 255),
                     st.integers(0, 255), st.integers(0, 255), st.integers(0, 40)) | st.sampled_from(
        ["0.0.0.0/1", "128.0.0.0/1", "0.0.0.0/00", "10.0.0.0/016", "::/0", "1.2.3.4", "10.0.0.0/8\n"])


SEMANTIC = {
    "cluster.publicAccessCidrs": st.lists(cidr(), max_size=45),
    "cluster.vpcCidr": cidr(),
    "cluster.version": st.sampled_from(["1.33", "1.33\n", "١.٣٣", "1.20", " 1.33", "1.35", "1.3"]),
    "cluster.name": st.text(max_size=120) | st.sampled_from(["team.prod", "-x", "a" * 101]),
    "serving.namespace": st.sampled_from(["kube-system", "default", "kube-public", "kube-node-lease",
                                          "nvidia-device-plugin", "kube-x", "Serving", "a" * 64]),
    "serving.serviceName": st.sampled_from(["8llm", "LLM", "llm_", "-llm", "l" * 64, "llm.svc"]),
    "serving.allowedNamespaces": st.lists(st.sampled_from(["gateway", "Gate", "kube-system", "", "a-b"]), max_size=80),
    "tags": st.dictionaries(st.text(max_size=140) | st.sampled_from(["aws:x", "AWS:y", ""]),
                            st.text(max_size=300), max_size=50),
    "gpuNodePool.labels": st.dictionaries(st.text(max_size=70) | st.sampled_from(["kubernetes.io/x",
                                                                                  "servingstack.io/pool", "a/b/c"]),
                                          st.text(max_size=70), min_size=1, max_size=5),
    "serving.vllm.extraArgs": st.lists(st.text(max_size=30), min_size=1, max_size=70),
    "modelStore.bucketName": st.text(alphabet="abc.-1xn3s", min_size=0, max_size=70),
    "serving.customModel": st.fixed_dictionaries({
        "parameters": st.floats(), "layers": st.integers(-5, 2000), "hiddenSize": st.integers(-5, 10**7),
        "attentionHeads": st.integers(-1, 2000), "kvHeads": st.integers(-1, 2000), "headDim": st.integers(0, 5000)}),
    "serving.quantization": st.sampled_from(["awq", "gptq", "fp8", "int8", None]),
    "serving.dtype": st.sampled_from(["bfloat16", "float32", "half", "fp16"]),
    "serving.startupSeconds": st.integers(-10, 20_000) | st.sampled_from([True, 60.5, "600"]),
    "serving.vllm.loadFormat": st.sampled_from(["safetensors", "auto", "pt", "runai_streamer"]),
    "cost.spotUsdPerHour": st.floats() | st.sampled_from([1e308, -1, 0]),
    "cost.nimLicenseUsdPerGpuMonth": st.floats(),
    "gpuNodePool.availabilityZone": st.sampled_from(["us-west-2a", "eu-west-1b", "us-east-1z", "us-east-1a\n"]),
    "serving.replicas": st.sampled_from(["yes", True, "2", 2.0, -1, 65, None]),
    "serving.enablePrefixCaching": st.sampled_from(["on", "yes", 1, "true", None]),
}


@st.composite
def semantic(draw, config: dict) -> str:
    cfg = copy.deepcopy(config)
    for _ in range(draw(st.integers(3, 4))):
        key = draw(st.sampled_from(sorted(SEMANTIC)))
        top, _, rest = key.partition(".")
        node = cfg.setdefault(f"servingstack:{top}", {}) if rest else cfg
        if not isinstance(node, dict):
            continue
        parts = rest.split(".") if rest else [f"servingstack:{top}"]
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = draw(SEMANTIC[key])
    if draw(st.booleans()):
        cfg["servingstack:ngcApiKey" if draw(st.booleans()) else "servingstack:hfToken"] = draw(st.text(max_size=20))
    return dump(cfg)


@st.composite
def other_namespaces(draw, text: str, alone: bool) -> str:
    """Odd values under other tools' namespaces: accepted as the engine accepts them (`alone`), or
    beside a near-miss of servingstack:environment, refused after the loader has read them."""
    head, sep, tail = text.partition("\nconfig:\n")
    lines = draw(st.lists(st.sampled_from(OTHER_NAMESPACE_LINES), min_size=1, max_size=5, unique=True))
    mutated = head + sep + "".join(f"  {line}\n" for line in lines) + tail
    if alone:
        return mutated
    return mutated.replace("servingstack:environment:", draw(st.sampled_from(
        ["servingstack:environmnet:", "ServingStack:environment:", "environment:", "servingstack:env:"])), 1)


def from_stack(kind: str) -> st.SearchStrategy[bytes]:
    """Mutated stack files of one class, from any shipped stack."""
    stacks = st.sampled_from(STACKS)
    if kind == "bytes":
        return stacks.flatmap(lambda s: bytes_and_yaml(TEXTS[s]))
    if kind == "structure":
        return stacks.flatmap(lambda s: structure(TEXTS[s])).map(str.encode)
    if kind == "keys":
        return stacks.flatmap(lambda s: keys_and_namespaces(CONFIGS[s])).map(str.encode)
    if kind == "leaf":
        return stacks.flatmap(lambda s: hostile_leaf(CONFIGS[s])).map(str.encode)
    if kind == "semantic":  # new clusters: an adopted one ignores most cluster keys (with a notice)
        return st.sampled_from(STACKS[:3]).flatmap(lambda s: semantic(CONFIGS[s])).map(str.encode)
    return stacks.flatmap(lambda s: other_namespaces(TEXTS[s], kind == "other-alone")).map(str.encode)


#: (class, examples drawn): 1,778 draws, about 1,570 distinct files.
CLASSES = [("bytes", 300), ("structure", 310), ("keys", 300), ("leaf", 320), ("semantic", 360),
           ("other", 180), ("other-alone", 8)]


def run_case(data: bytes, folder: Path, index: int) -> tuple[int, str, str]:
    path = folder / f"Pulumi.fuzz{index}.yaml"
    path.write_bytes(data)
    out = folder / f"out{index}"
    stderr, stdout = io.StringIO(), io.StringIO()
    with redirect_stderr(stderr), redirect_stdout(stdout), deadline(CASE_SECONDS):
        rc = cli.main(["synth", "--config", str(path), "--out", str(out)])
    wrote = out.exists()
    shutil.rmtree(out, ignore_errors=True)
    path.unlink()
    return rc, stderr.getvalue(), "wrote" if wrote else ""


def test_fuzz_corpus_of_mutated_stack_files(tmp_path):
    # Warm the imports up (the first synthesis loads the provider SDKs) outside the per-case deadline.
    cli.main(["synth", "--config", str(ROOT / "stacks" / "Pulumi.dev-small.yaml"), "--out", str(tmp_path / "warm")])
    seen: set[str] = set()
    stats: dict[str, Any] = {"cases": 0, "accepted": 0, "refused": 0, "max_line": 0, "kinds": {}, "accepted_kinds": {}}
    failures: list[str] = []

    def check(kind: str, data: bytes) -> None:
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            return
        seen.add(digest)
        stats["cases"] += 1
        stats["kinds"][kind] = stats["kinds"].get(kind, 0) + 1
        try:
            rc, err, wrote = run_case(data, tmp_path, stats["cases"])
        except Timeout:
            failures.append(f"hang ({kind}): {data[:200]!r}")
            return
        if "Traceback" in err:
            failures.append(f"traceback ({kind}): {err[-500:]} for {data[:200]!r}")
        elif rc == cli.EXIT_OK:
            stats["accepted"] += 1
            stats["accepted_kinds"][kind] = stats["accepted_kinds"].get(kind, 0) + 1
            if not wrote or [ln for ln in err.splitlines() if not ln.startswith("notice: ")]:
                failures.append(f"accepted without outputs or with a non-notice line ({kind}): {err[:300]}")
        elif rc == cli.EXIT_CONFIG:
            stats["refused"] += 1
            lines = err.splitlines()
            stats["max_line"] = max([stats["max_line"], *map(len, lines)])
            if len(lines) != 1 or not lines[0].startswith("error: ") or len(lines[0]) > MAX_ERROR_LINE:
                failures.append(f"refusal not one bounded line ({kind}): {err[:600]!r}")
            if wrote:
                failures.append(f"refusal wrote output ({kind}): {err[:300]}")
        else:
            failures.append(f"exit {rc} ({kind}): {err[:500]} for {data[:200]!r}")

    for kind, examples in CLASSES:
        @settings(max_examples=examples, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(from_stack(kind))
        def draw(data: bytes) -> None:
            check(kind, data)
        draw()

    print(f"fuzz corpus: {stats}")
    assert not failures, f"{len(failures)} failures, first: {failures[:3]}"
    assert stats["cases"] >= CORPUS_SIZE, stats
    assert stats["accepted"] >= 10 and stats["refused"] >= CORPUS_SIZE * 0.8, stats
    assert set(stats["kinds"]) == {kind for kind, _ in CLASSES}, stats
