"""Stage 8: model-freshness monitoring and operational metrics."""
