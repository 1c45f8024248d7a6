"""The benchmark script runs end to end (tiny N), so it does not rot; its figures are not asserted."""
from conftest import run_cli


def test_bench_validate_runs(tiny_model):
    out = run_cli("benchmarks/bench_validate.py", "--n", "300", "--naive-n", "50", "--encode-n", "10", timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "floor (orjson + stat + header)" in out.stdout
    assert "exact agreement 10/10" in out.stdout


def test_bench_hub_preflight_runs(tiny_model):
    out = run_cli("benchmarks/bench_hub_preflight.py", "--encode-n", "5", timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "rows: 19,987 training (1,325 distinct) + 13 held out" in out.stdout
    assert "preflight / encode: " in out.stdout
