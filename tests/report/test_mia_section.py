"""The mia and audit-dp report sections, rendered from smoke runs' stores."""

from __future__ import annotations

import re

import pytest

from privlab.report import SECTIONS, build_report
from privlab.report.mia_section import audit_bound_figure, roc_figure
from privlab.run import execute, load_spec


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("mia-report")
    specs = [
        load_spec(experiment="mia", preset="smoke", overrides={"top_records": 6}),
        load_spec(
            experiment="mia", preset="smoke", overrides={"top_records": 6, "target": {"kind": "dpsgd", "epsilon": 1.0}}
        ),
        load_spec(experiment="audit-dp", preset="smoke"),
        load_spec(experiment="audit-dp", preset="smoke", overrides={"target": {"epsilon": 16.0}}),
    ]
    for spec in specs:
        o = execute(spec, out, quiet=True)[0]
        assert o.status == "finished", o.error
    return build_report(out).read_text(encoding="utf-8")


def test_sections_are_registered():
    assert "mia" in SECTIONS and "audit-dp" in SECTIONS


def test_mia_section_has_roc_table_and_exposed_grid(page):
    assert "ROC curves (log-log)" in page and "Attack × target" in page and "Most exposed records" in page
    table = page[page.index("Attack × target") :]
    table = table[: table.index("</table>")]
    # both targets are columns, every attack a row with 2 × 4 numbers
    assert "plain (" in table and "dpsgd ε=1 (" in table
    for attack in ("loss", "lira-online", "lira-offline", "rmia", "label-only", "modified-entropy"):
        row = re.search(rf"<tr><td>{attack}</td>(.*?)</tr>", table)
        assert row is not None, attack
        values = [float(v) for v in re.findall(r'<td class="num">([0-9.]+)</td>', row.group(1))]
        assert len(values) == 8 and all(0.0 <= v <= 1.0 for v in values)
    caption = re.findall(r"the (\d+) records (\S+) scores most likely members.*?(\d+) of them are members", page)
    assert len(caption) == 2 and all(c[0] == "6" and int(c[2]) <= 6 for c in caption)
    assert page.count("data:image/png;base64,") >= 4  # ROC figure, 2 grids, audit figure


def test_audit_section_shows_bound_beside_accountant_epsilon(page):
    assert "Empirical lower bound vs accountant ε" in page
    sec = page[page.index("Empirical lower bound vs accountant ε") :]
    rows = re.findall(
        r"<tr><td>(audit-dp-\S+)</td><td>dpsgd</td><td class='num'>([0-9.]+)</td>"
        r"<td class='num'>([0-9.]+)</td>",
        sec,
    )
    assert len(rows) == 2
    accountant = sorted(float(r[1]) for r in rows)
    assert accountant[0] == pytest.approx(4.0, abs=0.1) and accountant[1] == pytest.approx(16.0, abs=0.3)
    assert all(0.0 <= float(r[2]) <= 3.5 for r in rows)  # 20 guesses cannot certify more than ~2.3


def test_figures_need_data():
    assert roc_figure([]) is None and roc_figure([("t", {})]) is None
    assert audit_bound_figure([{"epsilon": None, "bound": 0.0}]) is None
    uri = roc_figure(
        [("t", {"loss": {"fpr": [0, 0, 0.5, 1], "tpr": [0, 0.5, 1, 1], "auc": 0.9, "n_members": 2, "n_nonmembers": 2}})]
    )
    assert uri is not None and uri.startswith("data:image/png;base64,")
