"""KServe predictor: the fraud scorer."""
