"""The servingstack Pulumi program: load the stack's config, build the platform, export outputs."""

from servingstack.program import run

run()
