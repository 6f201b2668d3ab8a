"""`gristmill features suggest` reads keys, timestamps and kinds off the ingested tables."""

import json
import subprocess
import sys

import pandas as pd
import yaml

from gristmill.pipeline import register
from gristmill.spec import parse_spec

SPEC = {"project": "shop", "sources": [{"path": "unused"}], "entity": {"name": "customer", "key": "customer_id"},
        "features": [{"table": "profile"}], "label": {"table": "labels", "target": "y", "timestamp": "as_of"}}


def test_suggestions_name_key_timestamp_and_kind(workspace, add_tables, tmp_path):
    ts = pd.to_datetime
    ids = [f"c{i}" for i in range(20)]
    add_tables(workspace, "shop", {
        "labels": pd.DataFrame({"customer_id": ids, "y": [i % 2 for i in range(20)],
                                "as_of": ts(["2024-03-01"] * 20)}),
        "profile": pd.DataFrame({"customer_id": ids, "plan": ["a", "b"] * 10,
                                 "updated_at": ts(["2024-01-01"] * 20)}),
        "orders": pd.DataFrame({"order_no": [f"o{i}" for i in range(60)], "client": ids * 3,
                                "amount": [float(i) for i in range(60)],
                                "ordered": ts([f"2024-01-{1 + i % 28:02d}" for i in range(60)])}),
        "countries": pd.DataFrame({"code": ["DE", "FR"], "name": ["Germany", "France"]}),
    })
    spec_file = tmp_path / "shop.yaml"
    spec_file.write_text(yaml.safe_dump(SPEC))
    register(workspace, spec_file)

    out = subprocess.run([sys.executable, "-m", "gristmill", "features", "suggest", "shop", "--json"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    entries = {e["table"]: e for e in result["features"]}
    assert entries["profile"] == {"table": "profile", "timestamp": "updated_at"}
    assert entries["orders"] == {"table": "orders", "key": "client", "timestamp": "ordered", "kind": "events",
                                 "columns": ["amount"]}
    assert result["left_out"] == {"countries": "no column holds the label table's entity ids"}
    assert "order_no" in result["why"]["orders"]

    text = subprocess.run([sys.executable, "-m", "gristmill", "features", "suggest", "shop"],
                          capture_output=True, text=True).stdout
    parsed = yaml.safe_load(text)  # the printed section is valid YAML for the spec
    spec = parse_spec({**SPEC, "features": parsed["features"]}, "shop.yaml")
    assert [f.table for f in spec.features] == ["orders", "profile"]
