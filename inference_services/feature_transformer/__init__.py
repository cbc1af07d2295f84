"""KServe transformer: Feast features in front of the fraud scorer."""
