"""Benchmarks of Lobster against DynamoDB Local; `python -m bench.billing` measures the hourly run.

Nothing here is imported by the application, and every figure comes from requests the bench sent.
"""
