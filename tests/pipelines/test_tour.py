"""`deepfield tour --quick`: every leg runs, and the report links metrics and plots."""

import re


def test_quick_tour_writes_report_and_summary(tmp_path, cli):
    out = tmp_path / "tour"
    code, stdout, err = cli("tour", "--quick", "--out", str(out))
    assert code == 0, err
    report = (out / "REPORT.md").read_text()
    assert "| [vision](vision/)" in report
    assert re.search(r"accuracy 0\.\d{4}", report)
    for link in re.findall(r"\]\((vision/plots/[^)]+\.png)\)", report):
        assert (out / link).is_file(), link
    assert "vision/plots/confusion_matrix.png" in report
    assert "vision" in stdout and "quick" in stdout and "report:" in stdout
