"""The JSON API for pipelines: the deploy gate and deployment reports."""
