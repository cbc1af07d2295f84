"""The fraud model's explainer: a KServe explainer component (monitoring environment)."""
