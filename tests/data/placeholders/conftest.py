"""The scenarios here are placeholder fixtures (tests/unit/test_placeholders.py), not
rehearsals: keep the plugin's scenario.yaml collection away from them."""

collect_ignore_glob = ["*/scenario.yaml"]
