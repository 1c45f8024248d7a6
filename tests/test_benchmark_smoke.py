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


def test_parity_classes_runs(tiny_model):
    out = run_cli("benchmarks/parity_classes.py", "--files", "12", "--template", "internvl3_5", timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "# internvl3_5: 12 files" in out.stdout and "agreed: " in out.stdout


def test_bench_report_runs():
    out = run_cli("benchmarks/bench_report.py", "--steps", "300", "--predictions", "20", timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "predictions:       20 rows, 20 images" in out.stdout and "report size:" in out.stdout
