"""Helpers of the monitoring tests (monitoring environment only)."""
