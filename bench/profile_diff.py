#!/usr/bin/env python3
"""Two per-layer profiles of the same model side by side (`kestrel bench ENGINE --dump-profile` of two
builds, e.g. bench/device/ab.sh's base and current), sorted by how much each layer changed; layers only
one side has are listed with the other side blank. A layer whose op or tactic differs shows both; the last
line counts them (none changed: whatever the builds differ in did not reach these engines).

  bench/profile_diff.py BEFORE.log AFTER.log [--top N]
"""
import argparse

from profile_log import parse_profile


def by_layer(path):
    """{layer name: (op and tactic, ms)}: the profile prints a layer as "NAME (OP, TACTIC)"."""
    out = {}
    for text, ms in parse_profile(path):
        name, _, how = text.partition(" (")
        out[name] = (how.rstrip(")"), ms)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--top", type=int, default=20)
    a = ap.parse_args()
    b, c = by_layer(a.before), by_layer(a.after)
    rows = []
    for name in sorted(set(b) | set(c)):
        hb, tb = b.get(name, (None, None))
        hc, tc = c.get(name, (None, None))
        how = hc if hb in (None, hc) else hb if hc is None else f"{hb} -> {hc}"
        rows.append((f"{name} ({how})", tb, tc, (tc or 0.0) - (tb or 0.0)))
    rows.sort(key=lambda r: abs(r[3]), reverse=True)
    shown = rows[: a.top]
    width = max([len("layer (op, tactic)")] + [len(r[0]) for r in shown])
    fmt = lambda v: f"{v:9.4f}" if v is not None else f"{'':9}"
    print(f"{'layer (op, tactic)':{width}} {'before':>9} {'after':>9} {'change':>9}")
    for text, tb, tc, d in shown:
        print(f"{text:{width}} {fmt(tb)} {fmt(tc)} {d:+9.4f}")
    sb, sc = sum(v[1] for v in b.values()), sum(v[1] for v in c.values())
    print(f"sum: before {sb:.4f} ms ({len(b)} layers), after {sc:.4f} ms ({len(c)} layers), change {sc - sb:+.4f}")
    changed = sum(1 for n in set(b) & set(c) if b[n][0] != c[n][0])
    print(f"layers whose op or tactic changed: {changed} of {len(set(b) & set(c))}")


if __name__ == "__main__":
    main()
