"""Entry point of the servingstack component package (see PulumiPlugin.yaml).

The repository root's __main__.py is the servingstack Pulumi program, so the provider host lives in
this folder. It serves the public components listed in components/tools/package.py under the package name
`servingstack`, versioned like the installed distribution.
"""

from pulumi.provider.experimental import component_provider_host

from servingstack.tools.package import PACKAGE_NAME, hosted_components, inherited_docstrings, package_version

if __name__ == "__main__":
    with inherited_docstrings():
        component_provider_host(components=hosted_components(), name=PACKAGE_NAME, version=package_version())
