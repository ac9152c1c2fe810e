"""Explainability shared by the domains."""

from shared.explain.gradcam import gradcam_grid, gradcam_heatmaps, overlay_heatmap

__all__ = ["gradcam_grid", "gradcam_heatmaps", "overlay_heatmap"]
