"""NvidiaDevicePlugin: advertises `nvidia.com/gpu` on the GPU pools (and optionally DCGM metrics)."""

from typing import Optional

import pulumi
from typing_extensions import NotRequired

from ..planning import catalog
from .device_plugin_spec import dcgm_exporter_values, device_plugin_values
from .helm import HelmChart, helm_release
from ..base import Component, KubernetesArgs

NAMESPACE = "nvidia-device-plugin"


class NvidiaDevicePluginArgs(KubernetesArgs):
    pool_names: list[str]
    """GPU pools (values of the `servingstack.io/pool` label) that need the plugin: AL2023 NVIDIA pools."""
    skip_reason: NotRequired[str]
    """When set, install nothing and report this reason (e.g. every pool is Bottlerocket NVIDIA). Default unset."""
    chart_version: NotRequired[str]
    """nvidia-device-plugin chart version. Default the pinned catalog version."""
    mig_strategy: NotRequired[str]
    """none (default), single or mixed."""
    time_slicing_replicas: NotRequired[int]
    """Advertise each GPU this many times (dev only). Default 0 (off)."""
    gpu_feature_discovery: NotRequired[bool]
    """Install GPU feature discovery (and NFD) for GPU model labels. Default false."""
    dcgm_exporter: NotRequired[bool]
    """Install the DCGM exporter for GPU metrics on port 9400. Default false."""
    dcgm_exporter_chart_version: NotRequired[str]
    """dcgm-exporter chart version. Default the pinned catalog version."""
    metrics_pool_names: NotRequired[list[str]]
    """GPU pools the DCGM exporter runs on (Bottlerocket pools too). Default `pool_names`."""
    dcgm_service_monitor: NotRequired[bool]
    """Turn on the DCGM exporter's ServiceMonitor (needs the Prometheus Operator CRDs: make the
    component wait for them). Default false."""
    monitor_labels: NotRequired[dict[str, str]]
    """Labels for that ServiceMonitor (an existing Prometheus's selectors). Default {}."""


class NvidiaDevicePlugin(Component):
    """The official nvidia-device-plugin Helm chart, pinned, scheduled onto the GPU pools."""

    installed: pulumi.Output[bool]
    """Whether the chart was installed."""
    status: pulumi.Output[str]
    """What was installed, or why nothing was."""
    chart_version: pulumi.Output[str]
    """Installed chart version."""

    def __init__(self, name: str, args: NvidiaDevicePluginArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("servingstack:index:NvidiaDevicePlugin", name, opts, args)
        version = args.get("chart_version", catalog.DEVICE_PLUGIN_CHART_VERSION)
        child = self.child_opts()
        skip = args.get("skip_reason")
        if skip or not args["pool_names"]:
            self.installed = pulumi.Output.from_input(False)
            self.status = pulumi.Output.from_input(skip or "no GPU pool needs the device plugin")
        else:
            helm_release(f"{name}", HelmChart("nvidia-device-plugin", catalog.DEVICE_PLUGIN_CHART_REPO, version,
                                              NAMESPACE),
                         device_plugin_values(args["pool_names"], args.get("mig_strategy", "none"),
                                              args.get("time_slicing_replicas", 0),
                                              args.get("gpu_feature_discovery", False)), child)
            self.installed = pulumi.Output.from_input(True)
            self.status = pulumi.Output.from_input(f"nvidia-device-plugin {version} on pools "
                                                   f"{', '.join(args['pool_names'])}")
        metrics_pools = list(args.get("metrics_pool_names") or args["pool_names"])
        # An affinity "In" with no values is rejected by the API server: no pools, no exporter.
        if args.get("dcgm_exporter") and metrics_pools:
            helm_release(f"{name}-dcgm", HelmChart("dcgm-exporter", catalog.DCGM_EXPORTER_CHART_REPO,
                                                   args.get("dcgm_exporter_chart_version",
                                                            catalog.DCGM_EXPORTER_CHART_VERSION), NAMESPACE),
                         dcgm_exporter_values(metrics_pools, args.get("dcgm_service_monitor", False),
                                              args.get("monitor_labels")), child)
        self.chart_version = pulumi.Output.from_input(version)
        self.register_outputs({"installed": self.installed, "status": self.status,
                               "chart_version": self.chart_version})
