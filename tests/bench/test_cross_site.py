"""The cross-site benchmark runs end to end (tiny demo) and picks its default by the stated rule."""

import json

from bench.cross_site import OPTIONS, choose_default, main


def row(in_site, out_of_site, auc=0.9):
    return {"in_site": {"f1": in_site, "roc_auc": auc}, "out_of_site": {"f1": out_of_site, "roc_auc": auc}}


def test_the_default_is_best_out_of_site_among_options_close_to_the_best_in_site():
    rows = {"a": row(0.90, 0.70), "b": row(0.89, 0.75), "c": row(0.85, 0.90)}
    assert choose_default(rows) == "b"  # c is best out of site but costs 0.05 in site


def test_a_quick_run_reports_every_option_in_and_out_of_site(tmp_path, capsys):
    output = tmp_path / "cross_site.json"
    assert main(["--quick", "--output", str(output)]) == 0
    results = json.loads(output.read_text())
    assert set(results["options"]) == {o.name for o in OPTIONS}
    for option in results["options"].values():
        assert option["out_of_site"]["test_files"] > 0 and 0 <= option["out_of_site"]["f1"] <= 1
    assert results["default"] in results["options"]
    assert "| option | in-site F1" in capsys.readouterr().out
