"""Shared setup of the end-to-end tests (they need the environment built by `make env`)."""

import os
import sys

# testcontainers reads these once, when it is first imported, so they are set
# here, before any test module imports it:
# - no Ryuk reaper: its image cannot be pulled here; fixtures clean up instead;
# - published ports are reached on the Docker host's loopback (we run inside a
#   container, where testcontainers would otherwise guess a gateway address).
os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"
os.environ["TESTCONTAINERS_CONNECTION_MODE"] = "docker_host"
os.environ["TC_HOST"] = "127.0.0.1"

if "testcontainers.core.config" in sys.modules:  # imported earlier, e.g. by a plugin
    from testcontainers.core.config import ConnectionMode, testcontainers_config

    testcontainers_config.ryuk_disabled = True
    testcontainers_config.connection_mode_override = ConnectionMode.docker_host
    testcontainers_config.tc_host_override = "127.0.0.1"
