"""The finance config: every key a `finance` command accepts, with types and defaults."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from shared.config import ConfigModel
from shared.errors import UserError
from shared.training import RuntimeConfig, TrainConfig

ColumnKind = Literal["numeric", "categorical", "time", "id", "target", "ignore"]


class TransactionsConfig(ConfigModel):
    """`builtin:transactions`: the size and fraud rate of the synthetic stream."""

    customers: int = Field(1500, ge=20)
    merchants: int = Field(300, ge=20)
    days: int = Field(45, ge=3)
    fraud_rate: float = Field(0.005, ge=0.001, le=0.01, description="share of fraudulent rows")
    seed: int = 7


class FinanceDataConfig(ConfigModel):
    source: str | None = Field(
        None, description="default: builtin:transactions (fraud), builtin:german-credit (credit)"
    )
    target: str | None = Field(None, description="the label column (csv)")
    positive: str | None = Field(None, description="the target value meaning fraud/default")
    columns: dict[str, ColumnKind] | list[str] = Field(
        default_factory=dict,
        description="column -> kind (declared schema, overriding inference), or with "
        "data.header=false the list of column names",
    )
    delimiter: str | None = Field(None, description="force the separator (default: sniffed)")
    header: bool = Field(True, description="false: the file has no header row (give data.columns)")
    encoding: str | None = Field(None, description="force the encoding (default: detected)")
    exclude: list[str] = Field(default_factory=list, description="columns never used as features")
    split: Literal["auto", "time", "random"] = Field(
        "auto", description="auto: by time when a time column exists, else stratified random"
    )
    validation_split: float = Field(0.15, gt=0, lt=1)
    test_split: float = Field(0.2, gt=0, lt=1)
    on_missing: Literal["impute", "fail"] = Field(
        "impute",
        description="missing feature values: impute (numbers: the training split's median, "
        "categories: a 'missing' category) and report how many, or fail naming the columns",
    )
    group_column: str | None = Field(None, description="customer column for sequences")
    transactions: TransactionsConfig = TransactionsConfig()

    @field_validator("on_missing", mode="before")
    @classmethod
    def _old_spelling(cls, value: object) -> object:
        # Runs saved before `fail` was named so wrote `error`; they still load.
        return "fail" if value == "error" else value


class SequenceConfig(ConfigModel):
    """The sequence model: a recurrent stack over each customer's previous transactions."""

    history: int = Field(8, ge=2, le=64, description="transactions per sequence, current last")
    cell: Literal["gru", "lstm", "simple"] = "gru"
    units: int = Field(32, ge=1)
    num_layers: int = Field(1, ge=1)
    bidirectional: bool = False
    pooling: Literal["last", "mean", "attention"] = "last"


class FinanceModelConfig(ConfigModel):
    name: Literal["mlp", "autoencoder", "sequence"] = "mlp"
    hidden: list[int] = Field(default_factory=lambda: [64, 32])
    dropout: float = Field(0.2, ge=0, lt=1)
    l2: float = Field(1e-4, ge=0)
    latent: int = Field(8, ge=1, description="autoencoder bottleneck width")
    log_skewed: bool = Field(True, description="log(1 + x) for long-tailed non-negative numbers")
    numeric_bins: int = Field(0, ge=0, description="also one-hot quantile bins per number (0: off)")
    crosses: list[list[str]] = Field(default_factory=list, description="pairs of categoricals")
    crossing_dim: int = Field(32, ge=2)
    sequence: SequenceConfig = SequenceConfig()


class ImbalanceConfig(ConfigModel):
    loss: Literal["bce", "focal"] = "bce"
    focal_gamma: float = Field(2.0, ge=0)
    class_weight: Literal["balanced", "sqrt", "none"] = Field(
        "sqrt", description="positive weight: n_neg/n_pos, its square root, or 1"
    )


class CostConfig(ConfigModel):
    """Costs per decision outcome; the threshold minimises their total on validation."""

    false_negative: float = Field(100.0, ge=0, description="a missed fraud / an approved default")
    false_positive: float = Field(
        5.0, ge=0, description="a needless review / a declined good applicant"
    )
    true_positive: float = Field(5.0, ge=0, description="reviewing a caught fraud")
    threshold: float | None = Field(None, gt=0, lt=1, description="fixed threshold instead")


class CalibrationConfig(ConfigModel):
    method: Literal["platt", "isotonic", "none"] = "platt"


class ScorecardConfig(ConfigModel):
    """points = offset + factor * ln(odds of good); `base_points` at `base_odds`."""

    base_points: float = 600.0
    base_odds: float = Field(50.0, gt=0)
    pdo: float = Field(20.0, gt=0, description="points to double the odds")


class ReasonsConfig(ConfigModel):
    count: int = Field(3, ge=1, le=10)
    steps: int = Field(32, ge=4, le=256, description="integrated-gradients path steps")


class FairnessConfig(ConfigModel):
    """Which column fairness is measured over (it stays out of the features by default).

    `protected` must be a column of the data. A named config says `protected_if_present`
    instead: the first of those the table has (any case) is used, and a table without
    any of them is trained without a fairness report (the log says so).
    """

    protected: str | None = Field(None, description="protected attribute column (must exist)")
    protected_if_present: list[str] = Field(
        default_factory=list,
        description="protected attribute candidates used only where the table has them",
    )
    cut: float | None = Field(
        None, description="numeric attribute: groups below / at-or-above (integer codes: by code)"
    )
    use_as_feature: bool = False


class MetricsConfig(ConfigModel):
    fpr: float = Field(
        0.01, gt=0, lt=1, description="recall is reported at this false-positive rate"
    )
    top_k: int = Field(100, ge=1, description="precision of the k highest-scored alerts")


class FinanceConfig(ConfigModel):
    task: Literal["fraud", "credit"] = "fraud"
    model: FinanceModelConfig = FinanceModelConfig()
    data: FinanceDataConfig = FinanceDataConfig()
    train: TrainConfig = TrainConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    imbalance: ImbalanceConfig = ImbalanceConfig()
    cost: CostConfig = CostConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    scorecard: ScorecardConfig = ScorecardConfig()
    reasons: ReasonsConfig = ReasonsConfig()
    fairness: FairnessConfig = FairnessConfig()
    metrics: MetricsConfig = MetricsConfig()

    def check_runtime(self) -> None:
        """Refuse what finance cannot train on, before any data is read or TF is imported."""
        if self.runtime.strategy == "multi-worker":
            # Keras fit fails under MultiWorkerMirroredStrategy (keras-team/keras#20585),
            # and finance models train in seconds to minutes on one machine.
            raise UserError(
                "finance does not train with --strategy multi-worker (Keras fit fails under "
                "MultiWorkerMirroredStrategy, keras-team/keras#20585); use auto, default, "
                "one-device or mirrored"
            )

    def source(self) -> str:
        if self.data.source:
            return self.data.source
        return "builtin:transactions" if self.task == "fraud" else "builtin:german-credit"
