"""The fraud model's training library: data set, tuning, XGBoost training and evaluation."""
