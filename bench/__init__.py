"""Benchmarks: `python -m bench.<name>` from the repository root (see README, Performance).

Every figure is reported next to a baseline measured in the same run, as a ratio: the machines
these run on are shared and noisy, so absolute times mean little and ratios a lot. Each script
takes `--smoke` for a seconds-long run that only proves it still works (CI runs that).
"""
