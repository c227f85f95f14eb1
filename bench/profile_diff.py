#!/usr/bin/env python3
"""Two per-layer profiles of the same model side by side (`kestrel bench ENGINE --dump-profile` of two
builds, e.g. bench/device/ab.sh's base and current), sorted by how much each layer changed; layers only
one side has are listed with the other side blank.

  bench/profile_diff.py BEFORE.log AFTER.log [--top N]
"""
import argparse

from profile_log import parse_profile


def by_layer(path):
    # The text up to " (" names the layer; the op and tactic after it may differ between the builds.
    return {text.split(" (")[0]: (text, ms) for text, ms in parse_profile(path)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--top", type=int, default=20)
    a = ap.parse_args()
    b, c = by_layer(a.before), by_layer(a.after)
    rows = []
    for name in sorted(set(b) | set(c)):
        tb = b.get(name, (None, None))[1]
        tc = c.get(name, (None, None))[1]
        text = (c.get(name) or b.get(name))[0]
        rows.append((text, tb, tc, (tc or 0.0) - (tb or 0.0)))
    rows.sort(key=lambda r: abs(r[3]), reverse=True)
    fmt = lambda v: f"{v:9.4f}" if v is not None else f"{'':9}"
    print(f"{'layer (as profiled after)':52} {'before':>9} {'after':>9} {'change':>9}")
    for text, tb, tc, d in rows[: a.top]:
        print(f"{text[:52]:52} {fmt(tb)} {fmt(tc)} {d:+9.4f}")
    sb, sc = sum(v[1] for v in b.values()), sum(v[1] for v in c.values())
    print(f"sum: before {sb:.4f} ms ({len(b)} layers), after {sc:.4f} ms ({len(c)} layers), change {sc - sb:+.4f}")


if __name__ == "__main__":
    main()
