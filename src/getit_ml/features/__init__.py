"""Features: definitions, offline engineering, the Feast store and streaming ingestion."""
