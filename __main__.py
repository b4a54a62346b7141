"""The servingstack Pulumi program: load the stack's config, build the platform, export outputs."""

from components.program import run

run()
