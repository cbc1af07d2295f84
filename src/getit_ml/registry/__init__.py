"""The model registry: MLflow versions with lineage, checksums, champion/challenger aliases."""
