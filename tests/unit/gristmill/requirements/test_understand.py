"""Understanding on the demo's export and on two differently named exports built here (a lead
scoring CRM dump with no label table, a fraud payments file), and the label recipes' point-in-time
rule: who is labelled at t depends on nothing after t, the label on nothing after t + horizon."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gristmill.requirements.profile import profile
from gristmill.requirements.recipes import LabelPlan, build_labels
from gristmill.requirements.templates import load_templates
from gristmill.requirements.understand import Request, RulesAndEmbeddings
from gristmill.services import Context, invoke

DEMO = Path(__file__).parents[4] / "platform" / "gristmill" / "demo" / "data"


def _ingest(ws, project, folder):
    invoke(Context.local(ws), "data.ingest", project=project, path=str(folder))
    return profile(ws, project)


def _leads(folder: Path, seed: int = 3, later: bool = False):
    """A CRM dump: leads, and activities of which some are conversions ('Converted - won')."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    n = 300
    refs = [f"L-{i:05d}" for i in range(n)]
    pd.DataFrame({"Lead Ref": refs, "Source": rng.choice(["web", "fair", "referral"], n),
                  "Company Size": rng.integers(1, 500, n)}).to_csv(folder / "leads.csv", index=False)
    rows = []
    start = pd.Timestamp("2024-01-01")
    for i, ref in enumerate(refs):
        for _ in range(rng.integers(2, 8)):
            rows.append((ref, start + pd.Timedelta(days=int(rng.integers(0, 150))), rng.choice(["email", "call", "demo"])))
        if i % 3 == 0:
            rows.append((ref, start + pd.Timedelta(days=int(rng.integers(20, 150))), "Converted - won"))
    frame = pd.DataFrame(rows, columns=["Lead Ref", "Happened At", "Activity Type"])
    frame.sort_values("Happened At").to_csv(folder / "crm_activities.csv", index=False)
    return frame


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from gristmill.workspace import Workspace

    root = tmp_path_factory.mktemp("understand")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRISTMILL_WORKSPACE", str(root / "ws"))
        mp.setenv("GRISTMILL_FEATURE_REPO", str(root / "fr"))
        mp.setenv("GRISTMILL_BENTOS", str(root / "bentos"))
        yield Workspace.resolve().ensure(), root


def test_demo_export_churn_sentence(ws):
    ws, _ = ws
    tables = _ingest(ws, "demo_u", DEMO)
    u = RulesAndEmbeddings().understand(
        Request("Predict which customers will churn in next 30 days", "Customer transaction data, support tickets",
                "AUC > 0.85", "Production API serving 100k requests/day"), tables, load_templates())
    assert u.value("template") == "churn" and not u.questions
    assert u.value("target") == "churn_labels.churned" and u.value("entity_key") == "customer_id"
    assert u.value("as_of") == "as_of" and u.value("horizon_days") == 30
    assert u.value("gate") == [{"metric": "roc_auc", "bound": "min", "value": 0.85, "text": "AUC > 0.85"}]
    assert u.value("serving_workers") == 1
    # an objective no template fits is a question, not a guess
    vague = RulesAndEmbeddings(embeddings=False).understand(Request("make our numbers better"), tables,
                                                            load_templates())
    assert "template" in {q.name for q in vague.questions}
    # lifetime value from the German billing columns: two amount-like columns tie -> a question
    clv = RulesAndEmbeddings(embeddings=False).understand(
        Request("predict the lifetime value of each customer over the next 90 days"), tables, load_templates())
    assert clv.value("template") == "customer_lifetime_value" and clv.value("label_source") == "recipe"
    assert clv.value("events") == "billing" and clv.value("entity_name") == "customer"
    assert "amount" in {q.name for q in clv.questions}


def test_a_lead_export_with_other_names_and_no_label_table(ws):
    ws, root = ws
    _leads(root / "crm")
    tables = _ingest(ws, "crm_u", root / "crm")
    u = RulesAndEmbeddings(embeddings=False).understand(
        Request("score which leads will convert within 2 weeks"), tables, load_templates())
    assert u.value("template") == "lead_scoring" and u.value("label_source") == "recipe"
    assert u.value("events") == "crm_activities" and u.value("entity_key") == "lead_ref"
    assert u.value("outcome") == "activity_type" and u.value("horizon_days") == 14
    assert not u.questions, [q.as_dict() for q in u.questions]


def test_a_fraud_export_flags_on_the_events_themselves(ws):
    ws, root = ws
    rng = np.random.default_rng(5)
    n = 400
    folder = root / "pay"
    folder.mkdir()
    pd.DataFrame({"Txn No": range(n), "Card Number": rng.choice([f"C{i:03d}" for i in range(60)], n),
                  "Paid At": pd.date_range("2024-03-01", periods=n, freq="3h").astype(str),
                  "Amount EUR": rng.gamma(2, 30, n).round(2), "Merchant": rng.choice(["shop", "fuel", "web"], n),
                  "Chargeback Flag": np.where(rng.random(n) < 0.1, "yes", "no")}).to_csv(folder / "payments.csv",
                                                                                        index=False)
    tables = _ingest(ws, "pay_u", folder)
    u = RulesAndEmbeddings(embeddings=False).understand(
        Request("detect fraudulent card payments", target_metric="PR AUC > 0.3"), tables, load_templates())
    assert u.value("template") == "fraud"
    assert u.value("target") == "payments.chargeback_flag" and u.value("entity_key") == "card_number"
    assert u.value("as_of") == "paid_at" and u.value("metric") == "average_precision"


def test_label_recipes_are_point_in_time(ws):
    ws, root = ws
    plan = LabelPlan("event_within", "crm_activities", "lead_ref", "happened_at", "converted", 14, 14,
                     outcome="activity_type", outcome_words=("won",))
    labels = build_labels(ws, "crm_u", plan)
    events = _leads(root / "crm")
    events.columns = ["lead_ref", "t", "kind"]
    won = events[events.kind.str.contains("won")].groupby("lead_ref").t.min()
    first = events.groupby("lead_ref").t.min()
    for row in labels.sample(60, random_state=1).itertuples():
        as_of = pd.Timestamp(row.as_of)
        assert first[row.lead_ref] <= as_of                       # seen by t
        assert not (row.lead_ref in won and won[row.lead_ref] <= as_of)   # not converted yet at t
        expected = row.lead_ref in won and won[row.lead_ref] <= as_of + pd.Timedelta(days=14)
        assert bool(row.converted) == bool(expected)
    assert labels.as_of.max() + pd.Timedelta(days=14) <= events.t.max()  # every window has passed
    # changing events after the last window changes no label
    churn = LabelPlan("inactivity", "crm_activities", "lead_ref", "happened_at", "churned", 30, 30)
    before = build_labels(ws, "crm_u", churn)
    assert len(before) and set(before.columns) == {"lead_ref", "as_of", "churned"}


def test_an_amount_on_an_event_table_is_summed_by_the_recipe_not_taken_as_the_label():
    from gristmill.requirements.profile import ColumnProfile, TableProfile

    ids = [f"P{i}" for i in range(8)]
    sales = TableProfile("sales", 600, [ColumnProfile("sales", "product_id", "VARCHAR", 600, 40, 0, ids),
                                        ColumnProfile("sales", "sale_date", "DATE", 600, 200, 0, []),
                                        ColumnProfile("sales", "units", "DOUBLE", 600, 150, 0, ["1.0", "2.0"])])
    products = TableProfile("products", 40, [ColumnProfile("products", "product_id", "VARCHAR", 40, 40, 0, ids),
                                             ColumnProfile("products", "segment", "VARCHAR", 40, 3, 0, ["a"])])
    u = RulesAndEmbeddings(embeddings=False).understand(
        Request("forecast units sold per product for the next 7 days"), [sales, products], load_templates())
    assert u.value("template") == "demand_forecast" and u.value("label_source") == "recipe"
    assert "amount on an event table" in u.choices["label_source"].evidence
    assert u.value("events") == "sales" and u.value("amount") == "units" and u.value("horizon_days") == 7
    # the same column in a table named like labels, one row per product and date, is the label
    labels = TableProfile("demand_labels", 40, [ColumnProfile("demand_labels", "product_id", "VARCHAR", 40, 40, 0, ids),
                                                ColumnProfile("demand_labels", "as_of", "DATE", 40, 1, 0, []),
                                                ColumnProfile("demand_labels", "units", "DOUBLE", 40, 35, 0, ["3.0"])])
    given = RulesAndEmbeddings(embeddings=False).understand(
        Request("forecast units sold per product for the next 7 days"), [labels, sales, products], load_templates())
    assert given.value("label_source") == "table" and given.value("target") == "demand_labels.units"
