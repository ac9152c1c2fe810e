"""`builtin:german-credit`: UCI Statlog German credit, with its codes decoded.

The shipped file (`data/german.data`, CC BY 4.0, Hofmann 1994, see data/README.md) holds
1,000 applicants as space-separated codes (`A11 6 A34 ...`). Here each code becomes a
readable category, attribute 9 ("personal status and sex") is split into `sex` and
`personal_status` so that sex can be held out as a protected attribute, and the class
(1 good, 2 bad) becomes `default` (1 = bad credit).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

DATA_FILE = Path(__file__).parent / "data" / "german.data"
TARGET = "default"
# The attributes the UCI documentation calls numerical: quantities and ordinal counts
# (installment_rate 1-4 is a rate band), not codes to one-hot.
NUMERIC = [
    "duration_months", "credit_amount", "installment_rate", "residence_since", "age",
    "existing_credits", "num_dependents",
]  # fmt: skip

COLUMNS = [
    "checking_status", "duration_months", "credit_history", "purpose", "credit_amount",
    "savings", "employment_since", "installment_rate", "personal_status_sex",
    "other_debtors", "residence_since", "property", "age", "other_installment_plans",
    "housing", "existing_credits", "job", "num_dependents", "telephone", "foreign_worker",
    "class",
]  # fmt: skip

CODES = {
    "A11": "below_0", "A12": "0_to_200", "A13": "200_or_more", "A14": "no_account",
    "A30": "no_credits_or_all_paid", "A31": "all_paid_at_this_bank", "A32": "existing_paid_duly",
    "A33": "delayed_in_past", "A34": "critical_account",
    "A40": "car_new", "A41": "car_used", "A42": "furniture", "A43": "radio_tv",
    "A44": "appliances", "A45": "repairs", "A46": "education", "A47": "vacation",
    "A48": "retraining", "A49": "business", "A410": "other",
    "A61": "below_100", "A62": "100_to_500", "A63": "500_to_1000", "A64": "1000_or_more",
    "A65": "unknown_or_none",
    "A71": "unemployed", "A72": "below_1y", "A73": "1_to_4y", "A74": "4_to_7y", "A75": "7y_or_more",
    "A101": "none", "A102": "co_applicant", "A103": "guarantor",
    "A121": "real_estate", "A122": "savings_or_insurance", "A123": "car_or_other",
    "A124": "unknown_or_none",
    "A141": "bank", "A142": "stores", "A143": "none",
    "A151": "rent", "A152": "own", "A153": "for_free",
    "A171": "unskilled_non_resident", "A172": "unskilled_resident", "A173": "skilled",
    "A174": "management_or_self_employed",
    "A191": "none", "A192": "yes",
    "A201": "yes", "A202": "no",
}  # fmt: skip

# Attribute 9 mixes sex and marital status; split so `sex` can be the protected column.
PERSONAL = {
    "A91": ("male", "divorced_or_separated"),
    "A92": ("female", "divorced_separated_or_married"),
    "A93": ("male", "single"),
    "A94": ("male", "married_or_widowed"),
    "A95": ("female", "single"),
}


def load_german_credit(path: Path = DATA_FILE) -> pd.DataFrame:
    """The 1,000 applicants as a table of readable categories, numbers and `default`."""
    raw = pd.read_csv(path, sep=r"\s+", header=None, names=COLUMNS, dtype=str)
    frame = pd.DataFrame()
    for column in COLUMNS[:-1]:
        values = raw[column]
        if column == "personal_status_sex":
            frame["sex"] = values.map(lambda code: PERSONAL[code][0])
            frame["personal_status"] = values.map(lambda code: PERSONAL[code][1])
        elif values.str.startswith("A").all():
            frame[column] = values.map(CODES)
        else:
            frame[column] = pd.to_numeric(values).astype("float64")
    frame[TARGET] = (raw["class"] == "2").astype("int64")
    return frame
