"""The one base every servingstack component shares."""

from typing import Any, Mapping, Optional, TypedDict

import pulumi
from typing_extensions import NotRequired

from .arguments import check_arguments


class KubernetesArgs(TypedDict):
    """Arguments every Kubernetes component shares."""

    allow_default_provider: NotRequired[bool]
    """Let the component run without an explicit Kubernetes provider, on Pulumi's default one (the
    ambient kubeconfig's current context). Default false: refused unless `opts` (or the parent) passes a
    Kubernetes provider, e.g. `providers={"kubernetes": cluster.provider}`."""


class Component(pulumi.ComponentResource):
    """A ComponentResource whose arguments are checked before it registers, and whose children also
    wait for what the component was told to wait for.

    `args` (the component's Args dict) is checked like a stack file (see arguments.py): one
    ArgumentError line naming the component, the argument and the fix, before anything is registered;
    `check_args` adds a component's cross-argument rules.

    Pulumi does not pass a component's `depends_on` to its children: a node group inside a
    component that "depends on" the cluster's CNI add-on would otherwise be created at the same
    time as it. Children made with `child_opts()` carry the component's dependencies."""

    def __init__(self, type_name: str, name: str, opts: Optional[pulumi.ResourceOptions] = None,
                 args: Optional[Any] = None):
        if args is not None:
            check_arguments(type(self), name, args, opts, type(self).check_args)
        super().__init__(type_name, name, None, opts)
        self._inherited_depends_on = opts.depends_on if opts is not None else None

    @classmethod
    def check_args(cls, args: Mapping[str, Any]) -> None:
        """Cross-argument rules, run after every argument's type and range passed: raise
        `config.errors.RuleError(argument, message)` (or a planning `FitError`). Values of Input
        arguments may be Outputs. None by default."""

    def child_opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        """Options for a child: parented to this component, waiting for its dependencies (plus `kwargs`)."""
        return pulumi.ResourceOptions.merge(
            pulumi.ResourceOptions(parent=self, depends_on=self._inherited_depends_on),
            pulumi.ResourceOptions(**kwargs))


def offline_runtime() -> bool:
    """Whether the program runs under Pulumi's mock runtime (servingstack synth/check, tests,
    `pulumi.runtime.set_mocks`) rather than under the engine. Real runs (`pulumi preview` / `up`)
    talk to the engine's resource monitor over gRPC; mocked ones to a MockMonitor."""
    from pulumi.runtime.mocks import MockMonitor
    from pulumi.runtime.settings import get_monitor

    return isinstance(get_monitor(), MockMonitor)
