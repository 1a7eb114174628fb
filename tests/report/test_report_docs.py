"""The worked example of docs/architecture.md ("Adding a report section") registers a section that the report shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

from privlab.report import SECTIONS, build_report
from privlab.store import MetricRecord, Store

DOC = Path(__file__).parents[2] / "docs" / "architecture.md"


def _example_code() -> str:
    section = DOC.read_text("utf-8").split("## Adding a report section", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    return code


def test_the_documented_section_example_renders(tmp_path: Path) -> None:
    with Store(tmp_path) as s:
        for run_id, auc in (("mem-1", 0.81), ("mem-2", 0.52)):
            s.start_run(run_id, experiment="membership", spec={"target": "lenet5"}, spec_hash=run_id, seed=0,
                        versions={}, hardware={})  # fmt: skip
            s.log_metrics(run_id, [MetricRecord("attack_auc", auc, None, None, "privacy", False),
                                   MetricRecord("test_accuracy", 0.9, None, "fraction", "utility", True)])  # fmt: skip
            s.finish_run(run_id)
        roc = tmp_path / "mem-1" / "roc.json"
        roc.parent.mkdir()
        roc.write_text(json.dumps({"fpr": [0.0, 0.1, 1.0], "tpr": [0.0, 0.6, 1.0]}))
        s.add_artifact("mem-1", "roc", roc, "0" * 64)
    namespace: dict = {"__name__": "membership_section_example"}
    try:
        exec(compile(_example_code(), str(DOC), "exec"), namespace)
        assert SECTIONS.entry("membership").meta["title"] == "Membership inference"
        page = build_report(tmp_path).read_text("utf-8")
    finally:
        if "membership" in SECTIONS:
            SECTIONS.remove("membership")
    body = page[page.index('<section id="exp-membership">') :]
    body = body[: body.index("</section>")]
    assert "<h2>Membership inference <small>membership</small></h2>" in body
    assert "AUC 0.81; FPR → TPR: 0.00 → 0.00, 0.10 → 0.60, 1.00 → 1.00" in body
    assert "AUC 0.52; FPR → TPR: no ROC saved" in body
    assert body.count('<a href="#run-mem-') == 2  # the runs table links both runs
