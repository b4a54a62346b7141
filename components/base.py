"""The one base every servingstack component shares."""

from typing import Any, Optional

import pulumi


class Component(pulumi.ComponentResource):
    """A ComponentResource whose children also wait for what the component was told to wait for.

    Pulumi does not pass a component's `depends_on` to its children: a node group inside a
    component that "depends on" the cluster's CNI add-on would otherwise be created at the same
    time as it. Children made with `child_opts()` carry the component's dependencies."""

    def __init__(self, type_name: str, name: str, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_name, name, None, opts)
        self._inherited_depends_on = opts.depends_on if opts is not None else None

    def child_opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        """Options for a child: parented to this component, waiting for its dependencies (plus `kwargs`)."""
        return pulumi.ResourceOptions.merge(
            pulumi.ResourceOptions(parent=self, depends_on=self._inherited_depends_on),
            pulumi.ResourceOptions(**kwargs))
