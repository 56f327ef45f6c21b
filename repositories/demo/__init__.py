"""``tenancy demo`` and ``tenancy seed``: the payments platform end to end on a scratch database."""
