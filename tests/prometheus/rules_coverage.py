#!/usr/bin/env python3
"""Every alert of a rules file has a promtool unit test that fires it and one where it stays
silent: rules_coverage.py RULES.yaml TEST.yaml. Prints, per alert, the tests that fire it
(the closing table of tests/prometheus/run.sh); exits 1 when an alert lacks either case."""

import sys

import yaml


def main(rules_path, test_path):
    with open(rules_path, encoding="utf-8") as f:
        rules = yaml.safe_load(f)
    with open(test_path, encoding="utf-8") as f:
        tests = yaml.safe_load(f)
    alerts = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]
    fires, silent = {a: [] for a in alerts}, {a: [] for a in alerts}
    unknown = []
    for t in tests["tests"]:
        for case in t.get("alert_rule_test", []):
            name = case["alertname"]
            if name not in fires:
                unknown.append(name)
                continue
            (fires if case.get("exp_alerts") else silent)[name].append(f"{t['name']} @{case['eval_time']}")
    bad = 0
    for a in alerts:
        ok = fires[a] and silent[a]
        bad += not ok
        print(f"{'ok  ' if ok else 'FAIL'}  {a}")
        print(f"        fires:  {'; '.join(fires[a]) or 'NO TEST'}")
        print(f"        silent: {'; '.join(silent[a]) or 'NO TEST'}")
    for name in unknown:
        print(f"FAIL  a test names {name}, which is not an alert of {rules_path}")
    return 1 if bad or unknown else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
