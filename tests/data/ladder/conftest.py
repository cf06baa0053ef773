"""The scenarios here are `rehearse ladder` fixtures (tests/e2e/test_ladder_e2e.py), not rehearsals: keep the
plugin's scenario.yaml collection away from them."""

collect_ignore_glob = ["*/scenario.yaml"]
