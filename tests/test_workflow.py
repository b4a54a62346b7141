"""The pull-request workflow (.github/workflows/pr.yml): valid against GitHub's workflow schema,
offline checks for every PR without credentials, OIDC-only cloud access for same-repo previews and
merges, prod behind an environment approval, and only Makefile commands in `run:` steps."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import ROOT, STACK_NAMES

WORKFLOW = ROOT / ".github" / "workflows" / "pr.yml"
TEXT = WORKFLOW.read_text()
DOC = yaml.safe_load(TEXT)
JOBS = DOC["jobs"]
# PyYAML (YAML 1.1) reads the key `on` as True.
ON = DOC.get("on", DOC.get(True))


def make_targets() -> set[str]:
    targets = set()
    for line in (ROOT / "Makefile").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_./$()-]+(?:\s+[A-Za-z0-9_./$()-]+)*)\s*:(?!=)", line)
        if m and not line.startswith("\t"):
            targets.update(t for t in m.group(1).split() if "$" not in t and "/" not in t and "." not in t)
    return targets


def steps(job: str) -> list[dict]:
    return JOBS[job]["steps"]


def uses(job: str, action: str) -> dict:
    found = [s for s in steps(job) if str(s.get("uses", "")).startswith(action + "@")]
    assert len(found) == 1, f"{job} should use {action} once"
    return found[0]


def test_workflow_passes_the_github_workflow_schema():
    exe = Path(sys.executable).parent / "check-jsonschema"
    # A required dev dependency (pyproject [dev]): a missing oracle is a failure, never a skip.
    assert exe.exists(), f"{exe} is missing: install the dev dependencies (make install-dev)"
    proc = subprocess.run([str(exe), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_triggers():
    assert "pull_request" in ON
    assert ON["push"]["branches"] == ["main"]
    assert (ON["pull_request"] or {}).get("paths") is None, "every pull request runs the checks"


def test_default_permissions_are_read_only():
    assert DOC["permissions"] == {"contents": "read"}


def test_offline_checks_job_runs_for_every_pr_without_credentials():
    job = JOBS["checks"]
    assert "if" not in job
    assert job["permissions"] == {"contents": "read"}
    runs = [s["run"] for s in steps("checks") if "run" in s]
    for target in ("make test", "make check", "make scan"):
        assert target in runs
    summary = [r for r in runs if r.startswith("make pr-summary")]
    assert summary and "$GITHUB_STEP_SUMMARY" in summary[0]
    block = yaml.safe_dump(job)
    assert "secrets." not in block and "id-token" not in block and "configure-aws-credentials" not in block


def test_preview_matrix_per_stack_for_same_repo_prs_with_oidc():
    job = JOBS["preview"]
    assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"]
    assert job["needs"] == "checks"
    assert job["permissions"] == {"contents": "read", "pull-requests": "write", "id-token": "write"}
    assert sorted(job["strategy"]["matrix"]["stack"]) == sorted(STACK_NAMES)
    assert job["strategy"]["fail-fast"] is False
    aws = uses("preview", "aws-actions/configure-aws-credentials")["with"]
    assert "role-to-assume" in aws and not {"aws-access-key-id", "aws-secret-access-key"} & set(aws)
    pulumi = uses("preview", "pulumi/actions")
    assert pulumi["uses"] == "pulumi/actions@v7"
    w = pulumi["with"]
    assert w["command"] == "preview" and w["comment-on-pr"] is True and w["policyPacks"] == "policy"
    assert "${{ matrix.stack }}" in w["stack-name"]


def test_no_stored_cloud_keys_anywhere():
    assert not re.search(r"AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|aws-access-key-id|aws-secret-access-key", TEXT)
    assert "PULUMI_ACCESS_TOKEN" not in TEXT  # exchanged by OIDC (pulumi/auth-actions)
    assert set(re.findall(r"secrets\.([A-Z_]+)", TEXT)) <= {"GITHUB_TOKEN"}


def test_up_on_merge_is_optional_and_prod_needs_an_environment_approval():
    up, prod = JOBS["up"], JOBS["up-prod"]
    for job in (up, prod):
        assert "github.event_name == 'push'" in job["if"] and "refs/heads/main" in job["if"]
        assert "vars.PULUMI_UP_ENABLED == 'true'" in job["if"]
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
        assert job["concurrency"]["cancel-in-progress"] is False
    assert "prod" not in up["strategy"]["matrix"]["stack"]
    assert sorted(up["strategy"]["matrix"]["stack"] + ["prod"]) == sorted(STACK_NAMES)
    assert up["environment"] == "${{ matrix.stack }}"
    assert prod["environment"] == "prod" and prod["needs"] == "up"
    for job in ("up", "up-prod"):
        w = uses(job, "pulumi/actions")["with"]
        assert w["command"] == "up" and w["policyPacks"] == "policy"
        assert "role-to-assume" in uses(job, "aws-actions/configure-aws-credentials")["with"]


def test_oidc_is_requested_only_where_the_cloud_is_used():
    for name, job in JOBS.items():
        wants_cloud = any("configure-aws-credentials" in str(s.get("uses", "")) for s in job["steps"])
        assert (job.get("permissions", {}).get("id-token") == "write") == wants_cloud, name


def test_run_steps_call_only_makefile_targets():
    targets = make_targets()
    assert {"test", "check", "scan", "pr-summary", "install", "install-dev", "policy-install"} <= targets
    for name, job in JOBS.items():
        for step in job["steps"]:
            if "run" not in step:
                continue
            command = step["run"].strip()
            assert "\n" not in command, f"{name}: one make command per step"
            command = re.sub(r'\s*>>\s*"\$GITHUB_STEP_SUMMARY"$', "", command)
            words = shlex.split(command)
            assert words[0] == "make", f"{name}: {command!r} is not a make command"
            assert words[1:] and set(words[1:]) <= targets, f"{name}: {command!r} uses targets the Makefile lacks"


def test_runner_requirement_for_kubernetes_previews_is_documented():
    assert "self-hosted" in TEXT and "VPC" in TEXT and "publicAccessCidrs" in TEXT
    for job in ("preview", "up", "up-prod"):
        assert "vars.PULUMI_RUNNER" in JOBS[job]["runs-on"]


def test_preview_role_risk_and_cluster_access_are_documented():
    """Branch code runs with the preview role's access: the workflow and docs/checks.md must say not
    to make it cluster-admin, and how access entries work (creator via EKS, others listed)."""
    docs = (ROOT / "docs" / "checks.md").read_text()
    for name, text in (("pr.yml", TEXT), ("docs/checks.md", docs)):
        flat = " ".join(text.replace("#", " ").split())
        for needle in ("adminPrincipalArns", "cluster-admin", "bootstrapClusterCreatorAdminPermissions",
                       "required reviewers", "dry-run", "RBAC cannot tell a dry-run from a real write"):
            assert needle in flat, f"{name} lacks {needle!r}"


# ---- the diff comment: computed without credentials, posted from workflow_run -----------------------------

COMMENT_WORKFLOW = ROOT / ".github" / "workflows" / "pr-comment.yml"
COMMENT_TEXT = COMMENT_WORKFLOW.read_text()
COMMENT = yaml.safe_load(COMMENT_TEXT)


def test_checks_job_computes_the_diff_for_every_pull_request_and_keeps_it_as_data():
    checkout = uses("checks", "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0, "the target branch must be in the clone for `git worktree add`"
    (diff,) = [s for s in steps("checks") if s.get("run", "").startswith("make pr-diff")]
    assert "github.event_name == 'pull_request'" in diff["if"] and "!cancelled()" in diff["if"]
    assert diff["env"] == {"PR_NUMBER": "${{ github.event.pull_request.number }}"}
    assert "$GITHUB_STEP_SUMMARY" in diff["run"]
    artifact = uses("checks", "actions/upload-artifact")
    assert artifact["with"]["name"] == "pr-diff" and artifact["with"]["path"] == "build/pr-diff/"
    makefile = (ROOT / "Makefile").read_text()
    assert "servingstack diff --base $(DIFF_BASE) --head $(BUILD_DIR)" in makefile
    assert "origin/$(GITHUB_BASE_REF)" in makefile and "$(BUILD_DIR)/pr-diff/pr-number" in makefile


def test_comment_workflow_passes_the_schema():
    exe = Path(sys.executable).parent / "check-jsonschema"
    proc = subprocess.run([str(exe), "--builtin-schema", "vendor.github-workflows", str(COMMENT_WORKFLOW)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_comment_workflow_never_runs_pull_request_code():
    on = COMMENT.get("on", COMMENT.get(True))
    assert on == {"workflow_run": {"workflows": [DOC["name"]], "types": ["completed"]}}
    assert COMMENT["permissions"] == {}
    (job,) = COMMENT["jobs"].values()
    assert job["permissions"] == {"actions": "read", "pull-requests": "write"}
    assert "github.event.workflow_run.event == 'pull_request'" in job["if"]
    used = [str(s.get("uses", "")).split("@")[0] for s in job["steps"]]
    assert used == ["actions/download-artifact", "actions/github-script"]
    assert not any("run" in s for s in job["steps"]), "no shell steps"
    script = job["steps"][1]["with"]["script"]
    assert "${{" not in script, "no expression interpolation into the script"
    assert "pr.head.sha !== process.env.HEAD_SHA" in script, "the PR number from the artifact is verified"
    assert job["steps"][1]["env"]["HEAD_SHA"] == "${{ github.event.workflow_run.head_sha }}"
    assert "<!-- servingstack-diff -->" in script


def test_the_comment_and_its_security_reasoning_are_documented():
    docs = " ".join((ROOT / "docs" / "checks.md").read_text().split())
    for needle in ("pr-comment.yml", "workflow_run", "never checks out", "forks", "make pr-diff",
                   "servingstack diff"):
        assert needle in docs, needle
