"""Benchmark regression tooling behind ``predis bench run`` and ``predis bench compare``.

- :mod:`predis.benchtools.pairs`: the ratio-pair mechanism (a Predis configuration and its
  peer measured interleaved, round by round) and its registry.
- :mod:`predis.benchtools.headline`: the headline pairs that need nothing but the package.
- :mod:`predis.benchtools.stats`: bootstrap confidence intervals over per-round ratios and
  the regression decision.
- :mod:`predis.benchtools.results`: reading pytest-benchmark JSON files back, validated.
- :mod:`predis.benchtools.runner`: ``predis bench run`` (pytest-benchmark over ``bench/``).
- :mod:`predis.benchtools.callgrind`: instruction counts of the C++ core under callgrind.

docs/benchmarks.md says how to run, compare and update baselines.
"""
