"""The scenarios here are preflight fixtures (tests/unit/test_preflight.py), not
rehearsals: keep the plugin's scenario.yaml collection away from them."""

collect_ignore_glob = ["*/scenario.yaml"]
