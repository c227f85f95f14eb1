"""The per-layer table of `kestrel bench ENGINE --dump-profile`, for the scripts that read it (roofline.py,
profile_diff.py)."""
import json
import re
import sys


def parse_profile(path):
    """(layer text as the profile prints it, ms) for each layer of `kestrel bench --dump-profile`: its
    table on stdout, or the `layer_profile` of the same run's `--json` file."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    try:
        rows = [(l["layer"], float(l["mean_ms"])) for l in json.loads(text).get("layer_profile", [])]
        if rows:
            return rows
    except (ValueError, AttributeError):
        pass
    rows, inside = [], False
    for line in text.splitlines():
        if line.startswith("layer (separate profiling run)"):
            inside = True
            continue
        if not inside:
            continue
        if line.startswith("total"):
            break
        m = re.match(r"^(.*\S)\s+([0-9.]+)\s*$", line)
        if m:
            rows.append((m.group(1), float(m.group(2))))
    if not rows:
        sys.exit(f"{path}: no per-layer profile (run `kestrel bench ENGINE --dump-profile`)")
    return rows
