"""Infrastructure providers: cluster (kind | existing kubeconfig), database
(Postgres container | existing DSN), registry (container).

testcontainers reads its settings when first imported, so the defaults this
environment needs are set here, before any provider imports it: containers
are reached over loopback on published ports, and the reaper (whose image
cannot be pulled offline) is off because the session owns every resource.
"""

import os

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
os.environ.setdefault("TC_HOST", "127.0.0.1")
