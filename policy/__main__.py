"""The servingstack policy pack: `pulumi preview --policy-pack ./policy` (see docs/checks.md).

Only assembles the pack: the policies live in policies.py (importable and unit-tested, because
PolicyPack() starts a gRPC server and never returns). The environment whose enforcement levels
apply comes from SERVINGSTACK_ENVIRONMENT or the stack's own `servingstack:environment`; unknown
means prod.
"""

import os

from pulumi_policy import PolicyPack

from policies import environment_from, pack_enforcement_level, policies_for

ENVIRONMENT = environment_from(os.environ)

PolicyPack(
    name="servingstack",
    policies=policies_for(ENVIRONMENT),
    enforcement_level=pack_enforcement_level(ENVIRONMENT),
)
