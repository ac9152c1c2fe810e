"""`deepfield tour --quick`: every leg runs; REPORT.md and REPORT.html show metrics and plots."""

import re


def test_quick_tour_writes_report_and_summary(tmp_path, cli):
    out = tmp_path / "tour"
    code, stdout, err = cli("tour", "--quick", "--out", str(out))
    assert code == 0, err
    report = (out / "REPORT.md").read_text()
    assert "| [vision](#vision) |" in report
    assert re.search(r"\| accuracy \| 0\.\d{1,4} \|", report)
    for link in re.findall(r"\]\((vision/plots/[^)]+\.png)\)", report):
        assert (out / link).is_file(), link
    assert "vision/plots/confusion_matrix.png" in report
    assert "vision" in stdout and "quick" in stdout and "report:" in stdout
    # REPORT.html: a section per leg with its plots embedded (test_report_html checks
    # the page in detail on a fake tour).
    page = (out / "REPORT.html").read_text()
    for leg in re.findall(r"^## (\S+)$", report, re.MULTILINE):
        assert f'<section id="leg-{leg}"' in page, leg
    inline = re.findall(r"!\[[^]]*\]\([^)]+\.png\)", report)  # the same key plots
    assert inline and page.count('src="data:image/png;base64,') == len(inline)
