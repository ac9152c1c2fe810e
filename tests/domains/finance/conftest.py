"""Small trained finance runs shared by the tests (tiny synthetic stream, few epochs)."""

import pytest

# ~500 customers over 20 days: a few thousand rows with about 1% fraud.
SMALL_STREAM = [
    "data.transactions.customers=500",
    "data.transactions.merchants=80",
    "data.transactions.days=20",
    "data.transactions.fraud_rate=0.01",
]


@pytest.fixture(scope="session")
def credit_run(domain_run):
    """The harness's finance run: the credit config, 12 epochs (FinanceDomain.smoke_run)."""
    return domain_run("finance")


@pytest.fixture(scope="session")
def fraud_run(tmp_path_factory):
    from pipelines import finance

    path = tmp_path_factory.mktemp("runs") / "fraud"
    return finance.train(config="fraud", run_dir=path, overrides=SMALL_STREAM + ["train.epochs=4"])


@pytest.fixture(scope="session")
def sequence_run(tmp_path_factory):
    from pipelines import finance

    path = tmp_path_factory.mktemp("runs") / "sequence"
    overrides = SMALL_STREAM + [
        "train.epochs=3",
        "model.sequence.history=4",
        "model.sequence.units=16",
        "imbalance.loss=focal",
    ]
    return finance.train(config="fraud_sequence", run_dir=path, overrides=overrides)


@pytest.fixture(scope="session")
def credit_export(exported_run):
    """The harness's export of the credit run, under its default name finance_credit."""
    return exported_run("finance")
