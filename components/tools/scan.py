"""`make scan`: checkov on the synthesized manifests, gated on check IDs, with reviewed waivers.

    python -m servingstack.tools.scan --checkov .venv-checkov/bin/checkov --waivers policy/checkov-waivers.yaml \
        build/prod/manifests build/dev/manifests ...

checkov runs in its own virtualenv (its pins clash with pulumi's) as a subprocess, offline:
`--framework kubernetes --skip-download --compact --quiet -o json` (severities need the Prisma
platform, so the gate is on failed check IDs, never on severities). A failed check passes only if
a waiver covers it:
- on the object: `checkov.io/skipN: CKV_K8S_NN=<reason>` annotations (the components write these
  for per-workload facts, e.g. a vendor image's fixed UID); checkov itself counts them as skipped;
- in the repo's waiver list (policy/checkov-waivers.yaml): check id, reason, and the checkov
  resource ids (fnmatch patterns) it covers.
Either way a waiver needs a reason, and checks on privilege, capabilities, seccomp, host
namespaces, probes, resource requests/limits and the `latest` tag can never be waived.
Exit 1 on any unwaived failure, invalid waiver, or checkov error.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import yaml

CHECKOV_FLAGS = ["--framework", "kubernetes", "--skip-download", "--compact", "--quiet", "-o", "json"]
NEVER_WAIVED = {
    # privilege and root
    "CKV_K8S_2": "privileged containers (PSP)", "CKV_K8S_16": "privileged containers",
    "CKV_K8S_5": "allowPrivilegeEscalation (PSP)", "CKV_K8S_20": "allowPrivilegeEscalation",
    "CKV_K8S_6": "root containers (PSP)", "CKV_K8S_23": "root containers",
    # capabilities
    "CKV_K8S_7": "NET_RAW (PSP)", "CKV_K8S_24": "added capabilities (PSP)", "CKV_K8S_25": "added capabilities",
    "CKV_K8S_28": "NET_RAW", "CKV_K8S_36": "capabilities (PSP)", "CKV_K8S_37": "capabilities",
    "CKV_K8S_39": "CAP_SYS_ADMIN",
    # seccomp
    "CKV_K8S_31": "seccomp profile", "CKV_K8S_32": "default seccomp profile (PSP)",
    # host namespaces
    "CKV_K8S_1": "host PID (PSP)", "CKV_K8S_3": "host IPC (PSP)", "CKV_K8S_4": "host network (PSP)",
    "CKV_K8S_17": "host PID", "CKV_K8S_18": "host IPC", "CKV_K8S_19": "host network",
    # probes
    "CKV_K8S_8": "liveness probe", "CKV_K8S_9": "readiness probe",
    # resources
    "CKV_K8S_10": "CPU requests", "CKV_K8S_11": "CPU limits", "CKV_K8S_12": "memory requests",
    "CKV_K8S_13": "memory limits",
    # images
    "CKV_K8S_14": "image tag latest or blank",
}
CHECK_ID = re.compile(r"^CKV2?_K8S_\d+$")
SKIP_ANNOTATION = re.compile(r"^checkov\.io/skip\d+$")


@dataclass(frozen=True)
class Waiver:
    check: str
    reason: str
    resources: tuple[str, ...] = ()
    """fnmatch patterns over checkov resource ids (Kind.namespace.name); empty = every resource."""

    def covers(self, check_id: str, resource: str) -> bool:
        return check_id == self.check and (not self.resources or any(fnmatch.fnmatchcase(resource, p)
                                                                         for p in self.resources))


@dataclass
class ScanResult:
    directory: str
    passed: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    """(check id, resource, file) of every failure checkov reported."""
    waived: list[tuple[str, str, str]] = field(default_factory=list)
    """(check id, resource, reason) of failures the waiver list covers."""
    skipped: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def unwaived(self) -> list[tuple[str, str, str]]:
        waived = {(c, r) for c, r, _ in self.waived}
        return [f for f in self.failed if (f[0], f[1]) not in waived]


# ---- waivers ----------------------------------------------------------------------------------

def load_waivers(path: Path) -> tuple[list[Waiver], list[str]]:
    """The waiver list and the problems with it (a forbidden check, a missing reason, a bad id)."""
    doc = yaml.safe_load(path.read_text()) or {}
    problems: list[str] = []
    waivers: list[Waiver] = []
    for i, entry in enumerate(doc.get("waivers") or []):
        where = f"{path}: waivers[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected a map with check, reason, resources")
            continue
        check, reason = str(entry.get("check", "")), str(entry.get("reason") or "").strip()
        resources = entry.get("resources") or []
        if not CHECK_ID.match(check):
            problems.append(f"{where}: check {check!r} is not a checkov Kubernetes check id (CKV_K8S_NN)")
        elif check in NEVER_WAIVED:
            problems.append(f"{where}: {check} ({NEVER_WAIVED[check]}) may never be waived: fix the manifest")
        if len(reason) < 10:
            problems.append(f"{where}: {check} needs a reason (why it is safe, for whom)")
        if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
            problems.append(f"{where}: resources must be a list of checkov resource id patterns")
            resources = []
        waivers.append(Waiver(check, reason, tuple(resources)))
    return waivers, problems


def annotation_waivers(manifests_dir: Path) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(check id, object, reason) of every `checkov.io/skipN` annotation, and the forbidden or
    reasonless ones."""
    found: list[tuple[str, str, str]] = []
    problems: list[str] = []
    for path in sorted(manifests_dir.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict) or "kind" not in doc:
                continue
            meta = doc.get("metadata") or {}
            label = f"{doc['kind']}.{meta.get('namespace', 'default')}.{meta.get('name')}"
            for key, value in (meta.get("annotations") or {}).items():
                if not SKIP_ANNOTATION.match(str(key)):
                    continue
                check, _, reason = str(value).partition("=")
                found.append((check, label, reason))
                if check in NEVER_WAIVED:
                    problems.append(f"{path.name}: {key} skips {check} ({NEVER_WAIVED[check]}), which may never be "
                                    f"waived")
                if len(reason.strip()) < 10:
                    problems.append(f"{path.name}: {key} skips {check} without a reason")
    return found, problems


# ---- running checkov -----------------------------------------------------------------------------

def parse_report(text: str, directory: str) -> ScanResult:
    """checkov's `-o json` output (one report, a list of reports, or an empty summary)."""
    result = ScanResult(directory)
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        result.errors.append(f"checkov did not print JSON: {text.strip()[:300]}")
        return result
    reports = data if isinstance(data, list) else [data]
    for report in reports:
        if not isinstance(report, dict):
            continue
        summary = report.get("summary") or report
        result.passed += int(summary.get("passed", 0) or 0)
        result.skipped += int(summary.get("skipped", 0) or 0)
        if int(summary.get("parsing_errors", 0) or 0):
            result.errors.append(f"checkov could not parse {summary['parsing_errors']} file(s)")
        for check in (report.get("results") or {}).get("failed_checks") or []:
            result.failed.append((check["check_id"], check.get("resource", "?"), check.get("file_path", "?")))
    return result


def scan_directory(checkov: str, directory: Path, waivers: list[Waiver]) -> ScanResult:
    proc = subprocess.run([checkov, "-d", str(directory), *CHECKOV_FLAGS], capture_output=True, text=True,
                          check=False)
    result = parse_report(proc.stdout, str(directory))
    if proc.returncode not in (0, 1):
        result.errors.append(f"checkov exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    elif proc.returncode == 1 and not result.failed:
        result.errors.append(f"checkov exited 1 without reporting failed checks: {proc.stderr.strip()[-500:]}")
    apply_waivers(result, waivers)
    return result


def apply_waivers(result: ScanResult, waivers: list[Waiver]) -> None:
    for check, resource, _ in result.failed:
        waiver = next((w for w in waivers if w.covers(check, resource)), None)
        if waiver is not None and check not in NEVER_WAIVED:
            result.waived.append((check, resource, waiver.reason))


def report_lines(result: ScanResult) -> list[str]:
    lines = [f"{result.directory}: {result.passed} passed, {len(result.failed)} failed "
             f"({len(result.waived)} waived by the waiver list), {result.skipped} skipped by annotation"]
    for check, resource, reason in result.waived:
        lines.append(f"  waived  {check}  {resource}: {reason}")
    for check, resource, path in result.unwaived:
        lines.append(f"  FAILED  {check}  {resource}  ({path})")
    lines += [f"  ERROR   {e}" for e in result.errors]
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m servingstack.tools.scan", description=__doc__.split("\n")[0])
    p.add_argument("--checkov", required=True, help="the checkov executable (in its own virtualenv)")
    p.add_argument("--waivers", required=True, type=Path, help="waiver list (policy/checkov-waivers.yaml)")
    p.add_argument("directories", nargs="+", type=Path, help="manifests/ directories written by synth")
    args = p.parse_args(argv)

    waivers, problems = load_waivers(args.waivers)
    failed = bool(problems)
    for problem in problems:
        print(f"invalid waiver: {problem}")
    for directory in args.directories:
        if not directory.is_dir():
            print(f"{directory}: not a directory (run `make synth` first)")
            failed = True
            continue
        found, annotation_problems = annotation_waivers(directory)
        for problem in annotation_problems:
            print(f"invalid waiver: {directory}/{problem}")
        result = scan_directory(args.checkov, directory, waivers)
        print("\n".join(report_lines(result)))
        for check, obj, reason in found:
            print(f"  skip    {check}  {obj}: {reason}")
        failed = failed or bool(annotation_problems or result.unwaived or result.errors)
    print("scan: FAILED" if failed else "scan: passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
