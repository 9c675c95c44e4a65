"""Real datasets: adapters to the manifest, and ``fahr prepare`` (detection, alignment, one manifest per cohort)."""
