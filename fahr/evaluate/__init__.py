"""Evaluation: age metrics, survival statistics, robustness, saliency, subgroups."""
