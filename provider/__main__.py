"""Entry point of the servingstack component package (see PulumiPlugin.yaml).

The repository root's __main__.py is the servingstack Pulumi program, so the provider host lives in
this folder. It serves the public components listed in components/tools/package.py under the package name
`servingstack`, versioned like the installed distribution, with the component provider of
tools/package.py (Pulumi's, with inherited docstrings and integer inputs kept integers).
"""

import sys

from pulumi.provider import main

from servingstack.tools.package import component_provider

if __name__ == "__main__":
    main(component_provider(), sys.argv[1:])
