"""Speed of the ledger beside baselines measured in the same run (``python -m benchmarks``)."""
