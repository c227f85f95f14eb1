"""The scripts that read benchmark output, on hand-made input: profile_log.py and profile_diff.py on
`kestrel bench --dump-profile` (the table and the JSON read alike; the difference names changed tactics
and counts them), and device/ab_row.py on `kestrel bench --json` files (medians, speed-up, and a failure
when a side measured nothing)."""
import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BENCH))

from profile_log import parse_profile  # noqa: E402


def table(rows):
    """A profile as `kestrel bench --dump-profile` prints it (the lines around the table included)."""
    lines = ["GPU Compute      min 2.4741  mean 2.5371  median 2.5350 ms", "", "layer (separate profiling run)     mean ms"]
    lines += [f"{name} ({how})    {ms:.4f}" for name, how, ms in rows]
    lines += [f"total    {sum(r[2] for r in rows):.4f}"]
    return "\n".join(lines) + "\n"


def diff(tmp_path, before, after, *args):
    b, a = tmp_path / "before.log", tmp_path / "after.log"
    b.write_text(table(before))
    a.write_text(table(after))
    r = subprocess.run([sys.executable, str(BENCH / "profile_diff.py"), str(b), str(a), *args],
                       capture_output=True, text=True, check=True)
    return r.stdout.splitlines()


def test_table_and_json_read_alike(tmp_path):
    rows = [("/model.0/conv/Conv", "kestrel.ConvStem, stem_mma", 0.1322), ("/model.22/DetectV8", "kestrel.DetectV8, default", 0.0942)]
    t = tmp_path / "p.log"
    t.write_text(table(rows))
    j = tmp_path / "p.json"
    j.write_text(json.dumps({"layer_profile": [{"layer": f"{n} ({h})", "mean_ms": ms} for n, h, ms in rows]}))
    expected = [(f"{n} ({h})", ms) for n, h, ms in rows]
    assert parse_profile(str(t)) == expected
    assert parse_profile(str(j)) == expected


def test_a_file_without_a_profile_is_an_error(tmp_path):
    p = tmp_path / "empty.log"
    p.write_text("GPU Compute      median 2.5 ms\n")
    r = subprocess.run([sys.executable, str(BENCH / "profile_diff.py"), str(p), str(p)], capture_output=True, text=True)
    assert r.returncode != 0
    assert "no per-layer profile" in r.stderr


def test_changed_tactics_are_shown_and_counted(tmp_path):
    before = [("/model.0/conv/Conv", "kestrel.ConvStem, stem", 0.2087),
              ("/model.4/cv2/conv/Conv", "kestrel.Conv, igemm_64x64", 0.0712),
              ("/model.5/conv/Conv", "kestrel.Conv, igemm_64x64", 0.0679),
              ("/model.9/old", "kestrel.Conv, direct", 0.0100)]
    after = [("/model.0/conv/Conv", "kestrel.ConvStem, stem_mma", 0.1322),
             ("/model.4/cv2/conv/Conv", "kestrel.Conv, cudnn_algo1", 0.0500),
             ("/model.5/conv/Conv", "kestrel.Conv, igemm_64x64", 0.0794),
             ("/model.9/new", "kestrel.Conv, direct", 0.0050)]
    out = diff(tmp_path, before, after)
    # Largest change first; a changed tactic shows both sides, an unchanged one once.
    assert out[1].startswith("/model.0/conv/Conv (kestrel.ConvStem, stem -> kestrel.ConvStem, stem_mma)")
    assert "-0.0765" in out[1]
    assert any(l.startswith("/model.5/conv/Conv (kestrel.Conv, igemm_64x64) ") and "+0.0115" in l for l in out)
    # Layers only one side has: listed, the other side blank.
    assert any(l.startswith("/model.9/old (kestrel.Conv, direct)") for l in out)
    assert out[-2].startswith("sum: before 0.3578 ms (4 layers), after 0.2666 ms (4 layers)")
    assert out[-1] == "layers whose op or tactic changed: 2 of 3"


def test_top_limits_the_rows_not_the_count(tmp_path):
    rows = [(f"/model.{i}/conv/Conv", "kestrel.Conv, igemm_64x64", 0.01 * (i + 1)) for i in range(5)]
    out = diff(tmp_path, rows, rows, "--top", "2")
    assert len(out) == 1 + 2 + 2
    assert out[-1] == "layers whose op or tactic changed: 0 of 5"


def ab_row(tmp_path, *args):
    return subprocess.run([sys.executable, str(BENCH / "device" / "ab_row.py"), str(tmp_path), *args],
                          capture_output=True, text=True)


def bench_json(path, gpu_ms, images_per_s=None):
    j = {"gpu_compute_ms": {"median": gpu_ms}}
    if images_per_s is not None:
        j["end_to_end"] = {"images_per_s": images_per_s}
    path.write_text(json.dumps(j))


def test_ab_row_takes_the_median_of_each_side(tmp_path):
    for r, (base, cur) in enumerate([(2.90, 2.70), (2.85, 2.74), (2.88, 2.72)], start=1):
        bench_json(tmp_path / f"m_base_r{r}.json", base, 100.0 * r)
        bench_json(tmp_path / f"m_cur_r{r}.json", cur, 110.0 * r)
    r = ab_row(tmp_path, "m", "base", "cur", "before", "after", "--runs", "3")
    assert r.returncode == 0
    assert r.stdout.startswith("ROW m: before 2.8800 ms")
    assert "| after 2.7200 ms" in r.stdout and r.stdout.rstrip().endswith("| 1.059x")
    e = ab_row(tmp_path, "m", "base", "cur", "before", "after", "--runs", "3", "--e2e", "--tag", "ROW_E2E")
    assert e.stdout.startswith("ROW_E2E m: before 200.0 images/s") and e.stdout.rstrip().endswith("| 1.100x")


def test_ab_row_without_a_measurement_fails(tmp_path):
    bench_json(tmp_path / "m_base_r1.json", 2.9)
    r = ab_row(tmp_path, "m", "base", "cur", "before", "after", "--runs", "1")
    assert r.returncode == 1
    assert "ROW m: missing" in r.stdout
