"""Healthcare imaging: medical images to calibrated classifiers (and, as the domain
grows, segmentation), with the geometry and the metrics done right.

The domain's contract (`shared.domain.Domain`); its verbs import their TensorFlow
modules (`classify`, `serving`) only when called. The readers (`dicom_io`, `nifti_io`,
`volume`), the segmentation metrics (`seg_metrics`), the phantom generator (`phantom`)
and sliding-window inference (`sliding_window`) are numpy-only.
"""

from __future__ import annotations

from pathlib import Path

from domains.healthcare.config import HealthcareConfig, window_range
from shared.domain import Domain, SmokeRun, TourLeg, register_domain
from shared.errors import UserError

BUILTINS = ("breastmnist", "phantom")


@register_domain
class HealthcareDomain(Domain):
    name = "healthcare"
    summary = (
        "Medical image classification, calibrated, with sensitivity and specificity at a "
        "chosen operating point: train, evaluate, predict, explain, export."
    )
    tasks = ("classify",)
    config_class = HealthcareConfig
    data_specs = ("builtin", "npz", "folder")
    strategies = ("auto", "default", "one-device", "mirrored")
    strategies_note = (
        "healthcare trains with Keras fit, which fails under multi-worker (keras#20585)"
    )
    tour_legs = (
        TourLeg(
            "healthcare",
            "ResNet on BreastMNIST ultrasound (28x28, MedMNIST splits), temperature-calibrated",
            "roc_auc",
            0.85,
            config="default",
            quick=("train.epochs=3",),
        ),
    )
    smoke_run = SmokeRun(
        "default",
        ("train.epochs=2", "model.width=8"),
        resume=("train.epochs=8",),
    )
    task_module = "domains.healthcare.classify"
    order = 20
    notebook_run = "breastmnist"

    def check(self, config: HealthcareConfig) -> None:
        """The source, builtin, model and CT window are valid before TensorFlow starts."""
        super().check(config)
        kind, rest = self.check_data_spec(config.data.source)
        if kind == "builtin" and rest not in BUILTINS:
            raise UserError(f"unknown builtin {rest!r}; healthcare builtins: {', '.join(BUILTINS)}")
        if kind == "npz":
            from domains.healthcare.data_checks import check_npz_labels

            check_npz_labels(Path(rest).expanduser())
        if kind == "folder":
            from shared.data.folder_layout import list_folder

            list_folder(rest)
        window_range(config.data.window)
        from domains.healthcare.data_checks import check_classifier

        check_classifier(config.model.name)

    def serving_spec(self, run, config):
        from domains.healthcare import serving

        return serving.serving_spec(run, config)
