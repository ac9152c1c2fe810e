"""Explainability shared by the domains."""

from shared.explain.gradcam import gradcam_heatmaps, overlay_heatmap

__all__ = ["gradcam_heatmaps", "overlay_heatmap"]
