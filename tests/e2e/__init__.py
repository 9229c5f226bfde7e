"""End-to-end tests of the demo: the dagster CLI, a real `dagster dev`, a browser, S3 (moto)."""
