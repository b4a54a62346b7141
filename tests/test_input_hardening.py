"""Issue 19, one table per class of problem: every example of the issue, run through the CLI entry
point in-process (`servingstack synth --config FILE --out DIR`).

A refusal is exit 2 and exactly one bounded stderr line naming the key path (or the file) and the
stack file, with nothing written; a value under another tool's namespace is accepted without a crash.
The loader, CLI and output cases are here; the validators' cases are in test_config_rules.py.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import NamedTuple, Union

import pytest

from hardening import MAX_ERROR_LINE, one_error_line, replaced, run_cli, stack_text, tree, with_config_lines
from servingstack.tools import cli

NS = "servingstack:"


class Case(NamedTuple):
    id: str
    text: Union[str, bytes]
    key: str = ""
    """Key path the line must start with after `error: ` ('' for file-level problems)."""
    mentions: tuple[str, ...] = ()
    rc: int = cli.EXIT_CONFIG


def run_text(tmp_path: Path, capfd, text: Union[str, bytes], name: str = "test", seconds: float = 60):
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    out = tmp_path / "out"
    rc, stdout, err = run_cli(capfd, ["synth", "--config", str(path), "--out", str(out)], seconds)
    return rc, stdout, err, path, out


def check_case(case: Case, tmp_path: Path, capfd) -> str:
    rc, stdout, err, path, out = run_text(tmp_path, capfd, case.text)
    if case.rc == cli.EXIT_OK:
        assert rc == cli.EXIT_OK, err
        assert "Traceback" not in err and not [ln for ln in err.splitlines() if ln.startswith("error")], err
        assert (out / "plan.json").is_file()
        return err
    assert rc == case.rc, err
    line = one_error_line(err, case.key or None)
    assert str(path) in line, f"the stack file is not named: {line}"
    for text in case.mentions:
        assert text in line, f"{text!r} missing from: {line}"
    assert not out.exists(), "a refusal wrote output"
    return line


# 546 bytes: nine levels of nine aliases, 9^9 (387,420,489) strings once expanded.
ALIAS_BOMB = ("config:\n  servingstack:environment: dev\n  myapp:bomb:\n"
              "    a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
              + "".join(f"    {n}: &{n} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
                        for p, n in zip("abcdefgh", "bcdefghi")))

LOADER = [
    # YAML scalars that are not JSON, under another tool's namespace: accepted, as the engine would.
    Case("other-namespace-date", with_config_lines("prod", "myapp:releaseDate: 2024-06-01"), rc=cli.EXIT_OK),
    Case("other-namespace-binary", with_config_lines("prod", "myapp:blob: !!binary aGVsbG8gd29ybGQ="), rc=cli.EXIT_OK),
    Case("other-namespace-set", with_config_lines("prod", "myapp:members: !!set {alice, bob}"), rc=cli.EXIT_OK),
    Case("other-namespace-odd-keys-and-values",
         with_config_lines("prod", "myapp:odd: {8080: http, 2024-01-01: date, true: yes, ~: null, .inf: .nan, "
                                   "0x1F: !custom tag, list: !!omap [a: 1]}"), rc=cli.EXIT_OK),
    Case("other-namespace-timestamp-in-list", with_config_lines("prod", "myapp:when: [2001-12-14t21:59:43.10-05:00]"),
         rc=cli.EXIT_OK),
    # A key without a namespace, at the top of config: (as the Pulumi CLI refuses it) or of the file.
    Case("config-key-without-namespace", with_config_lines("prod", "8080: http"), "8080",
         ("could not parse", "<namespace>:<name>")),
    Case("config-key-known-name-without-namespace", with_config_lines("prod", "replicas: 2"), "replicas",
         ("<namespace>:<name>",)),
    Case("file-level-int-key", stack_text("prod") + "8080: http\n", "", ("'8080' is not a stack file key",)),
    Case("file-level-misspelt-config", stack_text("prod").replace("\nconfig:\n", "\nconifg:\n"), "",
         ("did you mean 'config'?",)),
    Case("non-utf8-byte-in-comment", stack_text("prod").encode() + b"# caf\xe9 au lait\n", "",
         ("byte 0xe9 is not UTF-8", "save the file as UTF-8")),
    # (libyaml's own flow-level limit may answer first: "exceeded maximum nesting depth")
    Case("nesting-1000-deep", with_config_lines("prod", "myapp:deep: " + "[" * 1000 + "]" * 1000), "",
         ("nest",)),
    Case("nesting-40-deep", with_config_lines("prod", "myapp:deep: " + "[" * 40 + "]" * 40), "",
         ("nests deeper than 32 levels",)),
    Case("nesting-1000-deep-maps", with_config_lines("prod", "myapp:deep: " + "{a: " * 1000 + "1" + "}" * 1000), "",
         ("nests deeper than 32 levels",)),
    Case("alias-bomb-546-bytes", ALIAS_BOMB, "", ("expands to more than 100,000 values",)),
    Case("alias-referring-to-itself", with_config_lines("prod", "myapp:loop: &loop [*loop]"), "",
         ("alias",)),
    Case("yaml-syntax-error-keeps-line-and-column", stack_text("prod").replace("    replicas: 2\n",
                                                                             "    replicas: [2\n"), "",
         ("cannot read stack file: YAML",)),
    Case("duplicate-environment-prod-then-dev", with_config_lines("prod", "servingstack:environment: dev"),
         "servingstack:environment", ("appears twice", "first at line")),
    Case("duplicate-nested-key", replaced("prod", "    replicas: 2\n", "    replicas: 2\n    replicas: 1\n"),
         "servingstack:serving.replicas", ("appears twice",)),
    Case("non-string-key-under-servingstack", replaced("prod", "    allowedNamespaces: [gateway]\n",
                                                       "    allowedNamespaces: [gateway]\n    8080: http\n"),
         "servingstack:serving.8080", ("is a number, not a name", "quote it")),
    Case("bad-explicit-int-tag", replaced("prod", "    replicas: 2\n", "    replicas: !!int two\n"), "",
         ("cannot decode !!int 'two'",)),
    Case("near-miss-namespace-servingstak", stack_text("prod").replace("servingstack:serving:", "servingstak:serving:"),
         "servingstak:serving", ("did you mean 'servingstack:serving'?",)),
    Case("near-miss-namespace-case", stack_text("prod").replace("servingstack:environment", "ServingStack:environment"),
         "ServingStack:environment", ("did you mean 'servingstack:environment'?",)),
    Case("near-miss-namespace-camel", stack_text("dev-small").replace("servingstack:gpuNodePool", "servingStack:gpuNodePool"),
         "servingStack:gpuNodePool", ("did you mean 'servingstack:gpuNodePool'?",)),
    Case("misspelt-aws-region-key", stack_text("prod").replace("aws:region", "aws:regoin"), "aws:regoin",
         ("did you mean 'aws:region'?", "AWS provider")),
    Case("misspelt-top-level-key", stack_text("prod").replace("servingstack:devicePlugin", "servingstack:devicePlugn"),
         "servingstack:devicePlugn", ("did you mean 'devicePlugin'?",)),
    Case("misspelt-nested-key", replaced("prod", "    tensorParallelSize: 2\n", "    tensorParalelSize: 2\n"),
         "servingstack:serving.tensorParalelSize", ("did you mean 'tensorParallelSize'?",)),
    Case("misspelt-deep-key", replaced("prod", "      image: vllm/vllm-openai:v0.8.4\n", "      imgae: x\n"),
         "servingstack:serving.vllm.imgae", ("did you mean 'image'?",)),
]


@pytest.mark.parametrize("case", LOADER, ids=[c.id for c in LOADER])
def test_loader_turns_any_file_into_a_config_or_one_line(case: Case, tmp_path, capfd):
    check_case(case, tmp_path, capfd)


def test_errors_name_the_line_and_column_of_the_key(tmp_path, capfd):
    text = replaced("prod", "    replicas: 2\n", "    replicas: two\n")
    line_no = text.splitlines().index("    replicas: two") + 1
    _, _, err, path, _ = run_text(tmp_path, capfd, text)
    assert one_error_line(err, "servingstack:serving.replicas").endswith(f"(in {path}:{line_no}:5)")


def test_yaml_error_position_is_pyyamls(tmp_path, capfd):
    text = stack_text("prod").replace("    replicas: 2\n", "    replicas: [2\n")
    _, _, err, path, _ = run_text(tmp_path, capfd, text)
    assert re.search(rf"^error: {re.escape(str(path))}:\d+:\d+: cannot read stack file: YAML", err), err


def test_alias_bomb_fails_fast(tmp_path, capfd):
    assert len(ALIAS_BOMB.encode()) <= 546
    start = time.monotonic()
    rc, _, err, _, _ = run_text(tmp_path, capfd, ALIAS_BOMB, seconds=10)
    assert rc == cli.EXIT_CONFIG and "expands to more than" in err
    assert time.monotonic() - start < 2


def test_other_namespace_values_reach_the_program_as_the_engine_passes_them(tmp_path, capfd):
    from servingstack.tools.synth import engine_config, read_stack_file

    path = tmp_path / "Pulumi.x.yaml"
    path.write_text(with_config_lines("prod", "myapp:releaseDate: 2024-06-01", "myapp:flag: yes",
                                      "myapp:blob: !!binary aGVsbG8=", "myapp:port: 0x1F",
                                      "myapp:set: !!set {a, b}", "myapp:keys: {8080: http}"))
    config, _, _ = engine_config(read_stack_file(path))
    assert config["myapp:releaseDate"] == "2024-06-01"  # yaml.v3 hands timestamps to interface{} as text
    assert config["myapp:flag"] == "yes"  # YAML 1.2: not a boolean
    assert config["myapp:blob"] == "hello"
    assert config["myapp:port"] == "31"
    assert config["myapp:set"] == '{"a": null, "b": null}'
    assert config["myapp:keys"] == '{"8080": "http"}'


# ---- files that are not stack files, and --config problems ---------------------------------------

def test_config_fifo_is_refused_without_blocking(tmp_path, capfd):
    fifo = tmp_path / "Pulumi.fifo.yaml"
    os.mkfifo(fifo)
    rc, _, err = run_cli(capfd, ["synth", "--config", str(fifo), "--out", str(tmp_path / "out")], seconds=10)
    assert rc == cli.EXIT_CONFIG
    assert "not a regular file" in one_error_line(err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("target, expected", [
    ("/dev/zero", "not a regular file"), ("/dev/null", "not a regular file"), (".", "is a directory"),
    ("/nonexistent/Pulumi.x.yaml", "No such file or directory"),
], ids=["dev-zero", "dev-null", "directory", "missing"])
def test_config_that_is_no_stack_file(target, expected, tmp_path, capfd):
    rc, _, err = run_cli(capfd, ["synth", "--config", target, "--out", str(tmp_path / "out")], seconds=10)
    assert rc == cli.EXIT_CONFIG
    line = one_error_line(err)
    assert target in line and expected in line
    assert not (tmp_path / "out").exists()


def test_config_empty_string(tmp_path, capfd):
    rc, _, err = run_cli(capfd, ["synth", "--config", "", "--out", str(tmp_path / "out")])
    assert rc == cli.EXIT_CONFIG
    line = one_error_line(err)
    assert "--config ''" in line and "Pulumi.None" not in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_config_unreadable(tmp_path, capfd):
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text(stack_text("prod"))
    path.chmod(0)
    rc, _, err = run_cli(capfd, ["synth", "--config", str(path), "--out", str(tmp_path / "out")])
    assert rc == cli.EXIT_CONFIG and "Permission denied" in one_error_line(err)


def test_config_over_the_size_cap_is_not_read_whole(tmp_path, capfd):
    # A 10 MB value: refused by size before parsing, the value never echoed.
    rc, _, err, _, out = run_text(tmp_path, capfd, with_config_lines("prod", "myapp:big: " + "x" * 10_000_000))
    assert rc == cli.EXIT_CONFIG
    assert "bytes, more than the 1,048,576" in one_error_line(err)
    assert "xxxxxxxxxx" not in err and not out.exists()


def test_stack_name_from_the_file_name_must_be_a_pulumi_stack_name(tmp_path, capfd):
    path = tmp_path / "Pulumi.prod copy.yaml"
    path.write_text(stack_text("prod"))
    rc, _, err = run_cli(capfd, ["synth", "--config", str(path), "--out", str(tmp_path / "out")])
    assert rc == cli.EXIT_CONFIG and "not a Pulumi stack name" in one_error_line(err)


# ---- the one-line contract ---------------------------------------------------------------------------

CONTRACT = [
    Case("newline-inside-a-value", replaced("prod", "    model: meta-llama/Llama-3.1-70B-Instruct\n",
                                            '    model: "meta-llama/Llama\\nInjected: line"\n'),
         "servingstack:serving.model", ("\\n",)),
    Case("carriage-return-and-escape-in-value", replaced("prod", "    model: meta-llama/Llama-3.1-70B-Instruct\n",
                                                         '    model: "x\\r\\u001b[31mred"\n'),
         "servingstack:serving.model", ("\\r", "\\x1b")),
    Case("notice-and-error-print-one-line", replaced("dev-small", "    podIdentity: true\n",
                                                     "    podIdentity: true\n    vpcCidr: 10.0.0.0/16\n"
                                                     "    bogus: 1\n"),
         "servingstack:cluster.bogus", ("unknown key",)),
    Case("500-kb-value-is-cut", replaced("prod", "    model: meta-llama/Llama-3.1-70B-Instruct\n",
                                         "    model: " + "m" * 500_000 + "\n"),
         "servingstack:serving.model", ("…",)),
    Case("500-kb-key-is-cut", replaced("prod", "    replicas: 2\n", "    replicas: 2\n    ? " + "k" * 500_000 + "\n    : 1\n"),
         "", ("unknown key",)),
    Case("newline-inside-a-key", replaced("prod", "    replicas: 2\n", '    replicas: 2\n    "a\\nb": 1\n'),
         "servingstack:serving.a\\nb", ("unknown key",)),
]


@pytest.mark.parametrize("case", CONTRACT, ids=[c.id for c in CONTRACT])
def test_every_refusal_is_one_bounded_line(case: Case, tmp_path, capfd):
    line = check_case(case, tmp_path, capfd)
    assert len(line) <= MAX_ERROR_LINE


def test_notices_print_only_when_the_run_succeeds(tmp_path, capfd):
    text = replaced("dev-small", "    podIdentity: true\n", "    podIdentity: true\n    vpcCidr: 10.0.0.0/16\n")
    rc, _, err, _, _ = run_text(tmp_path, capfd, text)
    assert rc == cli.EXIT_OK and "notice: servingstack:cluster.vpcCidr ignored" in err
    (tmp_path / "out2").write_text("a file")
    rc, _, err = run_cli(capfd, ["synth", "--config", str(tmp_path / "Pulumi.test.yaml"), "--out",
                                 str(tmp_path / "out2")])
    assert rc == cli.EXIT_FAILED and "notice:" not in err
    one_error_line(err)


# ---- --out: every operating-system error is one line; output appears whole or not at all ------------

@pytest.fixture
def earlier_build(tmp_path, capfd) -> Path:
    out = tmp_path / "build"
    rc, err = synth_into(capfd, out, "dev-small")
    assert rc == cli.EXIT_OK, err
    return out


def synth_into(capfd, out: Path, stack: str = "prod") -> tuple[int, str]:
    rc, _, err = run_cli(capfd, ["synth", "--config", str(Path(__file__).parent.parent / "stacks" /
                                                          f"Pulumi.{stack}.yaml"), "--out", str(out)])
    return rc, err


def test_out_naming_a_file(tmp_path, capfd):
    target = tmp_path / "file"
    target.write_text("keep me")
    rc, err = synth_into(capfd, target)
    assert rc == cli.EXIT_FAILED and "is a file, not a folder" in one_error_line(err)
    assert target.read_text() == "keep me"


def test_out_where_plan_json_is_a_folder(earlier_build, capfd):
    before = tree(earlier_build)
    (earlier_build / "plan.json").unlink()
    (earlier_build / "plan.json").mkdir()
    before = tree(earlier_build)
    rc, err = synth_into(capfd, earlier_build)
    assert rc == cli.EXIT_FAILED and "plan.json there is a folder" in one_error_line(err)
    assert tree(earlier_build) == before, "files were written beside the folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_out_in_an_unwritable_folder(tmp_path, capfd):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    rc, err = synth_into(capfd, locked / "build")
    assert rc == cli.EXIT_FAILED and "permission denied" in one_error_line(err).lower()


@pytest.mark.parametrize("target", ["/proc/servingstack-out/build", "/proc/self/servingstack-out"])
def test_out_where_nothing_can_be_written(target, capfd):
    """Folders no one can write into, root included (procfs)."""
    rc, err = synth_into(capfd, Path(target), "dev-small")
    assert rc == cli.EXIT_FAILED
    assert one_error_line(err).startswith(f"error: --out {target}: ")


def test_out_write_failure_leaves_the_earlier_build_untouched(earlier_build, capfd, monkeypatch):
    """A failure while writing (here: the disk fills up at plan.json) writes nothing and keeps the
    earlier build byte for byte."""
    before = tree(earlier_build)
    real = Path.write_text

    def full_disk(self, data, *args, **kwargs):
        if self.name == "plan.json":
            raise OSError(28, "No space left on device", str(self))
        return real(self, data, *args, **kwargs)
    monkeypatch.setattr(Path, "write_text", full_disk)
    rc, err = synth_into(capfd, earlier_build)
    assert rc == cli.EXIT_FAILED and "No space left on device" in one_error_line(err)
    monkeypatch.undo()
    assert tree(earlier_build) == before
    assert not [p for p in earlier_build.iterdir() if p.name.startswith(".servingstack-")]


def test_out_write_failure_in_a_new_folder_creates_nothing(tmp_path, capfd, monkeypatch):
    def full_disk(self, data, *args, **kwargs):
        raise OSError(28, "No space left on device", str(self))
    monkeypatch.setattr(Path, "write_text", full_disk)
    rc, err = synth_into(capfd, tmp_path / "new" / "deeper" / "build")
    assert rc == cli.EXIT_FAILED
    one_error_line(err)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_refusal_leaves_the_earlier_build_untouched(earlier_build, tmp_path, capfd):
    before = tree(earlier_build)
    bad = tmp_path / "Pulumi.dev-small.yaml"
    bad.write_text(replaced("dev-small", "    replicas: 1\n", "    replicas: yes\n"))
    rc, _, err = run_cli(capfd, ["synth", "--config", str(bad), "--out", str(earlier_build)])
    assert rc == cli.EXIT_CONFIG
    one_error_line(err, "servingstack:serving.replicas")
    assert tree(earlier_build) == before


def test_rebuild_replaces_the_outputs_and_keeps_other_files(earlier_build, capfd):
    (earlier_build / "notes.txt").write_text("mine")
    stale = earlier_build / "manifests" / "stale.yaml"
    stale.write_text("old")
    rc, err = synth_into(capfd, earlier_build)
    assert rc == cli.EXIT_OK, err
    assert (earlier_build / "notes.txt").read_text() == "mine"
    assert not stale.exists()
    assert '"stack": "prod"' in (earlier_build / "plan.json").read_text()
    assert oct(earlier_build.stat().st_mode & 0o777) != oct(0o700) or os.umask(0o22) == 0o077


def test_new_out_folder_gets_the_usual_mode(tmp_path, capfd):
    rc, err = synth_into(capfd, tmp_path / "fresh", "dev-small")
    assert rc == cli.EXIT_OK, err
    mask = os.umask(0o22)
    os.umask(mask)
    assert (tmp_path / "fresh").stat().st_mode & 0o777 == 0o777 & ~mask


def test_out_empty_string(capfd):
    rc, _, err = run_cli(capfd, ["synth", "--config", str(Path(__file__).parent.parent / "stacks" / "Pulumi.prod.yaml"),
                                 "--out", ""])
    assert rc == cli.EXIT_FAILED and "names no folder" in one_error_line(err)


@pytest.mark.parametrize("text, value", [
    # yaml.v3 resolve.go: YAML 1.2 booleans and nulls, Go integers, YAML-style floats, the rest text.
    ("true", True), ("False", False), ("yes", "yes"), ("on", "on"), ("No", "No"), ("~", None), ("null", None),
    ("0x1F", 31), ("0o17", 15), ("0b101", 5), ("0777", 511), ("1_000", 1000), ("-42", -42), ("+7", 7),
    ("08", 8.0), ("1.5", 1.5), ("1e5", 100000.0), (".5", 0.5), ("1e400", "1e400"), ("2024-06-01", "2024-06-01"),
    ("1:30", "1:30"), ("9" * 30, 1e30 - 1 + 1), ("18446744073709551615", 2**64 - 1), ("9223372036854775808", 2**63),
    ("-9223372036854775809", -9.223372036854776e18), ("0x", "0x"), ("1.2.3", "1.2.3"), ("١٢", "١٢"),
])
def test_plain_scalars_resolve_as_yaml_v3_does(text, value):
    import math

    from servingstack.config.yaml12 import resolve_plain

    got = resolve_plain(text)
    assert type(got) is type(value) and (got == value or (isinstance(got, float) and math.isclose(got, value))), got
