"""The adaptation benchmark runs end to end on a tiny demo and scores three disjoint sets of files."""

import json

from bench.adaptation import NAMES, main


def test_a_quick_run_scores_unheard_heard_and_original_files_before_and_after(tmp_path, capsys):
    output = tmp_path / "adaptation.json"
    assert main(["--quick", "--seeds", "1", "--output", str(output)]) == 0
    results = json.loads(output.read_text())
    row = results["by_seed"]["1"]
    assert set(row["new_site_groups"]["adapted_on"]).isdisjoint(row["new_site_groups"]["held_out_of_adaptation"])
    for part in NAMES:
        f1 = row[part]["metrics"]["f1"]
        assert row[part]["files"] > 0 and 0 <= f1["before"] <= 1 and 0 <= f1["after"] <= 1
        assert f1["change"] == f1["after"] - f1["before"]
    assert sum(c["kept"] for c in row["pseudo_labels"][0]["pseudo_labels"]) > 0
    assert "| mean | original in-site test" in capsys.readouterr().out
