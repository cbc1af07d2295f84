"""The fraud model's drift and outlier detector, fed by the KServe payload logger."""
