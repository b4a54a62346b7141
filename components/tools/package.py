"""The multi-language component package: which components it hosts and the schema Pulumi infers for
them from their type annotations.

`provider/__main__.py` hosts these components with Pulumi's component-provider host, which is what
`pulumi package add <repo>/provider@<tag>` runs. The tests build the same schema in-process (no
Pulumi CLI) and compare it with the checked-in snapshot `tests/golden/schema.json`; after a
deliberate API change regenerate it with `make schema` (`python -m servingstack.tools.package` prints it).

Relies on `pulumi.provider.experimental` (an experimental SDK API; pyproject pins `pulumi<4`).
"""

import ast
import contextlib
import importlib
import inspect
import json
import sys
import textwrap
import typing
from importlib import metadata
from typing import Any, Iterator, Optional

PACKAGE_NAME = "servingstack"
"""Package name: the first part of every type token (`servingstack:index:GpuNodePool`)."""

COMPONENTS = (
    "EksCluster", "ClusterNetwork", "GpuNodePool", "NvidiaDevicePlugin", "NgcCredentials", "HuggingFaceToken",
    "ModelStore", "ModelReadAccess", "VllmServer", "TritonServer", "NimServer", "ServingPlatform",
)
"""Every public component, by class name; all of them are hosted in the package."""


def package_version() -> str:
    """The installed distribution's version (pyproject.toml), which is also the package version."""
    try:
        return metadata.version(PACKAGE_NAME)
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"


def hosted_components() -> list[type]:
    """The component classes, in COMPONENTS order."""
    import servingstack

    return [getattr(servingstack, name) for name in COMPONENTS]


# ---- docstrings of inherited fields ---------------------------------------------------------------

def declared_bases(typ: type) -> list[type]:
    """The classes a class's fields can be inherited from. For a TypedDict these are its declared
    TypedDict bases (Python 3.11 keeps them out of `__mro__`, so they are read from the source)."""
    if not typing.is_typeddict(typ):
        return [c for c in typ.__mro__[1:] if c.__module__.startswith(f"{PACKAGE_NAME}.")]
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(typ)))
    except (OSError, TypeError, SyntaxError):
        return []
    module = sys.modules.get(typ.__module__)
    out: list[type] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == typ.__name__:
            for base in node.bases:
                found = getattr(module, base.id, None) if isinstance(base, ast.Name) else None
                if found is not None and typing.is_typeddict(found):
                    out += [found, *declared_bases(found)]
    return out


def _analyzer_class() -> type:
    from pulumi.provider.experimental.analyzer import Analyzer

    class InheritingAnalyzer(Analyzer):
        """Pulumi's analyzer reads a field's docstring only from the class being analyzed, so
        fields inherited from ServingArgs (and outputs from ServingComponent) would lose their
        descriptions. This one falls back to the classes they are declared in."""

        def analyze_component(self, component: type) -> Any:
            definition = super().analyze_component(component)
            if definition.description:
                definition.description = inspect.cleandoc(definition.description)
            return definition

        def get_docstring(self, typ: type, name: str) -> Optional[str]:
            doc = super().get_docstring(typ, name)
            if doc is None and isinstance(typ, type):
                for base in declared_bases(typ):
                    doc = super().get_docstring(base, name)
                    if doc is not None:
                        break
            return inspect.cleandoc(doc) if doc else doc

    return InheritingAnalyzer


@contextlib.contextmanager
def inherited_docstrings() -> Iterator[None]:
    """Within the block, the component provider infers schemas with InheritingAnalyzer."""
    from pulumi.provider.experimental import component

    original = component.Analyzer
    component.Analyzer = _analyzer_class()
    try:
        yield
    finally:
        component.Analyzer = original


def field_docstring(typ: type, name: str) -> Optional[str]:
    """The docstring of field `name` of `typ` (an Args TypedDict or a component), as the schema
    inference reads it."""
    return _analyzer_class()(PACKAGE_NAME).get_docstring(typ, name)


# ---- the provider and its schema --------------------------------------------------------------------

def _provider_class() -> type:
    from pulumi.provider.experimental.component import ComponentProvider, PropertyType

    class IntegerMappingProvider(ComponentProvider):
        """The engine sends every number as a float. The SDK's host converts integer inputs to int and
        then stores the float anyway, so `tensorParallelSize: 2` would reach the component as 2.0 (and
        the component's argument check refuses a float for an int). This host keeps the int."""

        def map_input_properties(self, inputs: Any, properties: dict, mapping: dict, component_name: str,
                                 property_path: str) -> Any:
            mapped = super().map_input_properties(inputs, properties, mapping, component_name, property_path)
            for schema_name, prop in properties.items():
                value = mapped.get(mapping[schema_name]) if isinstance(mapped, dict) else None
                if prop.type == PropertyType.INTEGER and isinstance(value, float) and value.is_integer():
                    mapped[mapping[schema_name]] = int(value)
            return mapped

    return IntegerMappingProvider


def component_provider(components: Optional[list[type]] = None, version: Optional[str] = None) -> Any:
    """The in-process ComponentProvider for `components` (default: all public ones)."""
    with inherited_docstrings():
        return _provider_class()(components or hosted_components(), PACKAGE_NAME,
                                 version=version or package_version())


def schema(components: Optional[list[type]] = None, version: Optional[str] = None) -> dict[str, Any]:
    """The package schema Pulumi infers (what `pulumi package get-schema ./provider` returns)."""
    return json.loads(component_provider(components, version).schema)


if __name__ == "__main__":
    importlib.import_module("servingstack")
    json.dump(schema(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
