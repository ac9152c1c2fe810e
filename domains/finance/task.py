"""Fraud detection and credit scoring: train, evaluate, predict, explain, monitor a run."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf

from domains.finance import data as finance_data
from domains.finance import fairness, features, metrics, monitor
from domains.finance import plots as finance_plots
from domains.finance import schema as finance_schema
from domains.finance.config import FinanceConfig
from domains.finance.models import build_model, compile_model
from domains.finance.reasons import reference_row
from domains.finance.scoring import (
    ARTIFACT,
    FEATURE_SPACE,
    MONITOR_REFERENCE,
    HistoryWindows,
    Scorer,
    history_index,
    write_input_contract,
)
from domains.finance.serving import EXAMPLES
from shared import calibration, model_io, plots
from shared.data.table import read_table, table_options
from shared.distribute import select_strategy
from shared.errors import UserError
from shared.model_card import write_model_card
from shared.run_dir import RunDir, write_json
from shared.training.trainer import fit, history_rows, make_optimizer, runtime_scope

LOG = logging.getLogger("deepfield.finance")
DOMAIN = "finance"


# === Training ===
def train(config: FinanceConfig, run: RunDir) -> dict[str, Any]:
    """Train the configured model into `run`, calibrate, pick the threshold, evaluate."""
    config.check_runtime()  # before any data is read
    with runtime_scope(config.train, config.runtime):
        return _train(config, run)


def positive_weight(labels: np.ndarray, how: str) -> float:
    ratio = float((labels == 0).sum()) / max(1.0, float((labels == 1).sum()))
    return {"balanced": ratio, "sqrt": float(np.sqrt(ratio)), "none": 1.0}[how]


def _datasets(config: FinanceConfig, scorer_inputs: np.ndarray, data, encoded: np.ndarray):
    """tf.data for training and validation (rows, or history windows gathered on the fly)."""
    seed, batch = config.runtime.seed, config.train.batch_size
    train_rows, val_rows = data.splits["train"], data.splits["validation"]
    labels = data.labels.astype("float32")[:, None]
    if config.model.name == "autoencoder":
        normal = train_rows[data.labels[train_rows] == 0]  # normal rows only
        x = encoded[normal]
        train_ds = (
            tf.data.Dataset.from_tensor_slices((x, x)).shuffle(len(x), seed=seed).batch(batch)
        )
        v = encoded[val_rows[data.labels[val_rows] == 0]]
        return train_ds, tf.data.Dataset.from_tensor_slices((v, v)).batch(4096)
    weight = positive_weight(data.labels[train_rows], config.imbalance.class_weight)
    weights = np.where(data.labels == 1, weight, 1.0).astype("float32")
    LOG.info(
        "positive class weight %.2f (%s), loss %s",
        weight,
        config.imbalance.class_weight,
        config.imbalance.loss,
    )
    if isinstance(scorer_inputs, HistoryWindows):
        # Windows are gathered per batch from the encoded rows, never all at once.
        padded = tf.constant(scorer_inputs.padded)

        def source(rows, shuffle):
            ds = tf.data.Dataset.from_tensor_slices(
                (scorer_inputs.index[rows], labels[rows], weights[rows])
            )
            ds = ds.shuffle(len(rows), seed=seed) if shuffle else ds
            return ds.batch(batch if shuffle else 4096).map(
                lambda i, y, w: (tf.gather(padded, i), y, w)
            )

        val_ds = source(val_rows, False).map(lambda x, y, w: (x, y))
        return source(train_rows, True), val_ds
    train_ds = (
        tf.data.Dataset.from_tensor_slices(
            (scorer_inputs[train_rows], labels[train_rows], weights[train_rows])
        )
        .shuffle(len(train_rows), seed=seed)
        .batch(batch)
    )
    val_ds = tf.data.Dataset.from_tensor_slices((scorer_inputs[val_rows], labels[val_rows])).batch(
        4096
    )
    return train_ds, val_ds


def _train(config: FinanceConfig, run: RunDir) -> dict[str, Any]:
    strategy = select_strategy(config.runtime)
    if config.model.name == "autoencoder" and config.calibration.method == "none":
        raise UserError(
            "the autoencoder's reconstruction error needs calibration.method platt or isotonic"
        )
    data = finance_data.load(config)
    report = data.split_report
    run.write_splits(
        data.spec,
        {name: len(rows) for name, rows in data.splits.items()},
        class_counts=report.get("class_counts"),
        seed=config.runtime.seed,
        method=report.get("method", config.data.split),
        **{k: report[k] for k in ("stratified", "grouped", "groups", "duplicates") if k in report},
    )
    train_frame = data.frame.iloc[data.splits["train"]]
    if config.model.log_skewed:
        data.schema.log_numeric = features.skewed_columns(train_frame, data.schema)
        LOG.info("log(1 + x) before normalising: %s", ", ".join(data.schema.log_numeric) or "none")
    write_input_contract(run, config, data.schema)
    space = features.build_feature_space(data.schema, train_frame, config.model)
    features.save_feature_space(space, run.path / FEATURE_SPACE)
    encoded = features.encode(space, data.frame, data.schema)
    LOG.info("encoded %d columns into %d inputs", len(data.schema.features), encoded.shape[1])
    artifact: dict[str, Any] = {
        "task": config.task,
        "model": config.model.name,
        "features": data.schema.features,
        "encoded_width": int(encoded.shape[1]),
        "reference": reference_row(train_frame, data.labels[data.splits["train"]], data.schema),
        "calibration": {"method": "none"},
        "threshold": 0.5,
    }
    with strategy.scope():
        model = build_model(encoded.shape[1], config)
    scorer = Scorer(config, data.schema, space, model, artifact)
    inputs = scorer.model_inputs(encoded, data.frame)
    train_ds, val_ds = _datasets(config, inputs, data, encoded)
    steps = config.train.steps_per_epoch or max(
        1, int(np.ceil(len(data.splits["train"]) / config.train.batch_size))
    )
    with strategy.scope():
        compile_model(model, make_optimizer(config.train, steps), config)
    fit(model, train_ds, val_ds, run=run, train=config.train)
    model_io.save_model(model, run.model_path)
    return _finish(config, run, data, scorer, inputs)


def _finish(
    config: FinanceConfig, run: RunDir, data, scorer: Scorer, inputs: np.ndarray
) -> dict[str, Any]:
    """Calibrate and choose the threshold on validation, then evaluate on test."""
    val = data.splits["validation"]
    raw_val = scorer.raw_scores(inputs[val])
    scorer.artifact["calibration"] = calibration.fit_calibrator(
        config.calibration.method, raw_val, data.labels[val]
    )
    p_val = scorer.probabilities(raw_val)
    threshold = metrics.choose_threshold(data.labels[val], p_val, config.cost)
    scorer.artifact["threshold"] = threshold
    thresholds, costs = metrics.cost_curve(data.labels[val], p_val, config.cost)
    finance_plots.cost_vs_threshold(
        np.maximum(thresholds, 1e-6), costs, threshold, run.plots / "cost_vs_threshold.png"
    )
    LOG.info(
        "threshold %.4f (%s) on validation",
        threshold,
        "fixed" if config.cost.threshold else "lowest cost",
    )
    train_rows = data.splits["train"]
    train_scores = scorer.monitored_score(
        scorer.probabilities(scorer.raw_scores(inputs[train_rows]))
    )
    reference = monitor.build_reference(
        data.frame.iloc[train_rows], data.schema.numeric, data.schema.categorical, train_scores
    )
    write_json(run.path / MONITOR_REFERENCE, reference)
    write_json(run.path / ARTIFACT, scorer.artifact)
    write_serving_examples(run, scorer, data)
    result = evaluate_rows(
        scorer, data.frame, data.labels, data.splits["test"], inputs, run, split="test"
    )
    plots.training_curves(history_rows(run.history_path), run.plots / "training_curves.png")
    write_card(config, run, data, scorer, result)
    return result


def write_serving_examples(run: RunDir, scorer: Scorer, data, count: int = 8) -> None:
    """Real test rows (positives and negatives) for the export's warmup requests."""
    test = data.splits["test"]
    positives, negatives = test[data.labels[test] == 1], test[data.labels[test] == 0]
    rows = np.r_[positives[: count // 2], negatives[: count - min(count // 2, len(positives))]]
    schema = data.schema
    names = schema.input_names()
    kinds = {names[c]: "numeric" for c in schema.numeric} | {
        names[c]: "categorical" for c in schema.categorical
    }
    columns: dict[str, list] = {}
    saved: dict[str, Any] = {"kinds": kinds, "rows": rows.tolist()}
    if scorer.kind == "sequence":
        index = history_index(data.frame, schema, config_history(scorer))[rows]
        for column in schema.features:
            values = data.frame[column].to_numpy()
            pad = 0.0 if column in schema.numeric else ""
            columns[names[column]] = [
                [
                    (float(values[j]) if column in schema.numeric else str(values[j]))
                    if j >= 0
                    else pad
                    for j in window
                ]
                for window in index
            ]
        saved[finance_schema.HISTORY_LENGTH] = (index >= 0).sum(axis=1).tolist()
    else:
        for column in schema.features:
            values = data.frame[column].to_numpy()[rows]
            columns[names[column]] = (
                [float(v) for v in values] if column in schema.numeric else [str(v) for v in values]
            )
    saved["columns"] = columns
    write_json(run.path / EXAMPLES, saved)


def config_history(scorer: Scorer) -> int:
    return scorer.config.model.sequence.history


# === Evaluation ===
def evaluate_rows(
    scorer: Scorer,
    frame: pd.DataFrame,
    labels: np.ndarray,
    rows: np.ndarray,
    inputs: np.ndarray,
    run: RunDir,
    *,
    split: str,
    out: Path | None = None,
) -> dict[str, Any]:
    """Metrics and plots for `rows`, written to metrics.json (or `out`)."""
    config = scorer.config
    y = labels[rows]
    p = scorer.probabilities(scorer.raw_scores(inputs[rows]))
    threshold = scorer.artifact["threshold"]
    decisions = (p >= threshold).astype(int)
    result = metrics.binary_metrics(y, p, threshold, config.cost, config.metrics)
    sub = frame.iloc[rows]
    if "fraud_pattern" in sub.columns:
        result.update(
            metrics.recall_by_pattern(sub["fraud_pattern"].astype(str).to_numpy(), y, decisions)
        )
    finance_plots.pr_roc_curves(y, p, run.plots / "pr_roc_curves.png")
    plots.confusion_matrix(
        np.array(
            [
                [result["true_negatives"], result["false_positives"]],
                [result["false_negatives"], result["true_positives"]],
            ]
        ),
        ["negative", "positive"],
        run.plots / "confusion_matrix.png",
    )
    if config.task == "credit":
        points = scorer.points(p)
        result["score_mean"] = float(points.mean())
        finance_plots.score_distributions(
            y, points, run.plots / "score_distribution.png", xlabel="scorecard points", log=False
        )
        curve = calibration.reliability_curve(y, p)
        plots.reliability_diagram(
            {"model": curve},
            run.plots / "reliability.png",
            title=f"reliability (Brier {result['brier']:.3f}, ECE {result['ece']:.3f})",
        )
    else:
        finance_plots.score_distributions(
            y,
            p,
            run.plots / "score_distribution.png",
            xlabel="fraud probability",
            threshold=threshold,
        )
    if scorer.schema.protected and scorer.schema.protected in sub.columns:
        report = fairness.fairness_report(
            sub[scorer.schema.protected], y, p, decisions, config.fairness.cut
        )
        result.update(fairness.flat_metrics(report))
        write_json(run.path / "fairness.json", report)
        finance_plots.fairness_groups(report, run.plots / "fairness.png")
    result.update(split=split, num_examples=int(len(rows)), task=config.task, domain=DOMAIN)
    run.write_metrics(result, path=out)
    return result


def evaluate(
    run: RunDir, config: FinanceConfig, *, source: str | None, split: str, out: Path | None
) -> dict[str, Any]:
    """Re-evaluate a finished run on a split of its data, or on every row of a CSV."""
    scorer = Scorer.load(run, config)
    if source:
        finance_data.parse_spec(source, accepted=finance_data.ACCEPTED_SPECS)
        if source.startswith("builtin:"):
            data = finance_data.load(
                config.model_copy(
                    update={"data": config.data.model_copy(update={"source": source})}
                )
            )
            frame, labels, rows = data.frame, data.labels, data.splits[split]
        else:
            raw = read_table(source, **table_options(config.data))[0]
            frame = scorer.clean(raw, require_target=True)
            labels = (
                (raw[scorer.schema.target].astype(str) == scorer.schema.positive)
                .to_numpy()
                .astype(int)
            )
            rows, split = np.arange(len(frame)), "all"
    else:
        data = finance_data.load(config)
        frame, labels, rows = data.frame, data.labels, data.splits[split]
    inputs = scorer.model_inputs(scorer.encode(frame), frame)
    return evaluate_rows(scorer, frame, labels, rows, inputs, run, split=split, out=out)


# === Prediction, explanation, monitoring ===
def score_table(
    scorer: Scorer, raw: pd.DataFrame, *, with_reasons: bool = True
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    frame = scorer.clean(raw)
    inputs = scorer.model_inputs(scorer.encode(frame), frame)
    p = scorer.probabilities(scorer.raw_scores(inputs))
    out = {"probability": p, "decision": (p >= scorer.artifact["threshold"]).astype(int)}
    if scorer.config.task == "credit":
        out["score"] = scorer.points(p)
    if with_reasons:
        out["attributions"] = scorer.attributions(inputs)
    return frame, out


def predict(run: RunDir, config: FinanceConfig, inputs: list[str]) -> list[dict[str, Any]]:
    """One result per row of the given CSV files / JSON rows."""
    raw, names = finance_data.rows_from_inputs(inputs)
    scorer = Scorer.load(run, config)
    frame, scored = score_table(scorer, raw)
    reasons = scorer.reason_list(scored["attributions"], frame)
    labels = ("approve", "decline") if config.task == "credit" else ("legitimate", "fraud")
    results = []
    for i in range(len(frame)):
        result = {
            "input": names[i] if i < len(names) else str(i),
            "probability": round(float(scored["probability"][i]), 6),
            "decision": int(scored["decision"][i]),
            "label": labels[int(scored["decision"][i])],
        }
        if "score" in scored:
            result["score"] = round(float(scored["score"][i]), 2)
        result["reason_codes"] = [r["feature"] for r in reasons[i]]
        result["reasons"] = reasons[i]
        results.append(result)
    return results


def explain(
    run: RunDir, config: FinanceConfig, inputs: list[str], out: Path | None = None, limit: int = 500
) -> Path:
    """Mean attribution per column over the given rows (default: test rows), as a plot."""
    scorer = Scorer.load(run, config)
    if inputs:
        raw, _ = finance_data.rows_from_inputs(inputs)
        frame, scored = score_table(scorer, raw)
    else:
        data = finance_data.load(config)
        rows = data.splits["test"][:limit]
        frame = data.frame.iloc[rows]
        inputs_ = scorer.model_inputs(scorer.encode(data.frame), data.frame)[rows]
        scored = {"attributions": scorer.attributions(inputs_)}
    attributions = scored["attributions"]
    mean = np.abs(attributions).mean(axis=0)
    order = np.argsort(-mean)
    values = {scorer.schema.features[j]: float(mean[j]) for j in order}
    target = Path(out) if out else run.plots / "attributions.png"
    what = "reconstruction error" if scorer.kind == "autoencoder" else "integrated gradients, logit"
    finance_plots.bar_chart(
        values, target, title=f"mean |attribution| over {len(frame)} rows", xlabel=what
    )
    write_json(target.with_suffix(".json"), values)
    return target


def monitor_data(
    run: RunDir, config: FinanceConfig, source: str, out: Path | None = None
) -> dict[str, Any]:
    """PSI of the score and each feature of `source` against the run's training split."""
    scheme, value = finance_data.parse_spec(source, accepted=finance_data.ACCEPTED_SPECS)
    if scheme == "builtin":
        data = finance_data.load(
            config.model_copy(update={"data": config.data.model_copy(update={"source": source})})
        )
        raw = data.frame
    else:
        raw = read_table(source, **table_options(config.data))[0]
    scorer = Scorer.load(run, config)
    frame, scored = score_table(scorer, raw, with_reasons=False)
    reference = json.loads((run.path / MONITOR_REFERENCE).read_text())
    report = monitor.compare(reference, frame, scorer.monitored_score(scored["probability"]))
    report["source"] = source
    target = Path(out) if out else run.path / "monitor.json"
    write_json(target, report)
    finance_plots.psi_report(report, run.plots / "monitor_psi.png")
    report["plot"] = str(run.plots / "monitor_psi.png")
    return report


# === Model card ===
def write_card(
    config: FinanceConfig, run: RunDir, data, scorer: Scorer, result: dict[str, Any]
) -> None:
    what = "fraud detector" if config.task == "fraud" else "probability-of-default model"
    write_model_card(
        run,
        title=f"{config.model.name} {what}",
        summary=f"A {config.model.name} {what} trained with Deepfield on `{data.spec}`, "
        f"calibrated ({scorer.artifact['calibration']['method']}) on the validation split, "
        f"deciding at threshold {scorer.artifact['threshold']:.4f} (lowest validation cost).",
        data={
            "source": data.spec,
            "rows": len(data.frame),
            "positive rate": f"{100 * data.labels.mean():.2f}%",
            "target": f"{data.schema.target} (positive: {data.schema.positive})",
            "numeric features": ", ".join(data.schema.numeric) or "-",
            "categorical features": ", ".join(data.schema.categorical) or "-",
            "integer codes (also one-hot)": ", ".join(data.schema.codes) or "-",
            "missing values imputed": finance_schema.describe_missing(data.schema, data.missing)
            if config.data.on_missing == "impute"
            else "none (data.on_missing=fail)",
            "protected attribute (not a feature)": data.schema.protected or "-",
            **{f"{name} rows": len(rows) for name, rows in data.splits.items()},
        },
        model={
            "architecture": config.model.name,
            "hidden": str(config.model.hidden),
            "encoded inputs": scorer.artifact["encoded_width"],
            "parameters": f"{scorer.model.count_params():,}",
            "loss": "mse on normal rows"
            if config.model.name == "autoencoder"
            else config.imbalance.loss,
        },
        training={
            "epochs": config.train.epochs,
            "batch size": config.train.batch_size,
            "learning rate": config.train.learning_rate,
            "class weight": config.imbalance.class_weight,
            "costs (FN / FP / TP)": f"{config.cost.false_negative} / {config.cost.false_positive} / {config.cost.true_positive}",
            "seed": config.runtime.seed,
        },
        metrics={k: v for k, v in result.items() if k not in ("task", "domain")},
        intended_use="Ranking and flagging transactions for review (fraud) or supporting "
        "credit decisions with a calibrated probability, scorecard points and reason codes "
        "(credit), for rows like the training data. A person reviews flagged cases.",
        limitations=[
            "Metrics come from one held-out split of one source; drift (see `finance monitor`) "
            "or another population can change them.",
            "Reason codes are integrated-gradients attributions against a typical good row, "
            "not causal effects.",
            "Fairness figures cover only the configured protected attribute; other columns "
            "(e.g. personal_status) may act as proxies for it.",
        ],
    )
