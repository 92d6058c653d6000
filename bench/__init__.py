"""Benchmarks of Flask-LiveHelp, each beside its baseline measured in the same run.

Run ``python -m bench`` from the repository root (``--quick`` for a short
run, ``--help`` for the rest). docs/benchmarks.md explains every table.
"""
