"""One small base for "Helm chart + pinned version + typed values" (cdk-eks-blueprints' HelmAddOn)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s


@dataclass(frozen=True)
class HelmChart:
    """A chart pinned to one version from one repository."""

    chart: str
    repo: str
    version: str
    namespace: str


def helm_release(name: str, chart: HelmChart, values: dict[str, Any], opts: pulumi.ResourceOptions,
                 depends_on: Optional[list[pulumi.Resource]] = None) -> k8s.helm.v3.Release:
    """A Helm release (rendered and applied by the provider, so its values are reviewable in the
    plan). `atomic` rolls a failed upgrade back instead of leaving a half-applied release."""
    return k8s.helm.v3.Release(
        name,
        name=name,
        chart=chart.chart,
        version=chart.version,
        namespace=chart.namespace,
        create_namespace=True,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo),
        values=values,
        atomic=True,
        cleanup_on_fail=True,
        timeout=600,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=depends_on or [])),
    )
