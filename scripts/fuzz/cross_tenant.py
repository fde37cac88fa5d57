"""Schemathesis hooks for the control plane's fuzz run (scripts/fuzz-control-plane.sh): a
check that no answer to tenant acme's token carries anything of tenant globex. The marker
comes from the environment only: Hypothesis feeds string literals of this file to the
generator, and a literal marker would be sent (and echoed back in a 404) as a tenant name."""

import os

import schemathesis

MARKER = os.environ["STROM_FUZZ_MARKER"].encode()


@schemathesis.check
def no_cross_tenant_read(ctx, response, case):
    if MARKER in response.content:
        raise AssertionError(
            f"{case.method} {case.formatted_path} answered {response.status_code} with "
            "another tenant's data"
        )
