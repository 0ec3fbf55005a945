"""Docstring examples are run, so the documented behaviour stays true."""

from __future__ import annotations

import doctest

import pytest

import predis.cache
import predis.demo.config
import predis.mlops.abtest
import predis.mlops.federated.privacy
import predis.monitoring.metrics
import predis.monitoring.monitor
import predis.monitoring.prometheus
import predis.prefetch.model
import predis.sim.prefetcher
import predis.workloads.loop
import predis.workloads.phases
import predis.workloads.scans
import predis.workloads.sessions
import predis.workloads.traces
import predis.workloads.ycsb
import predis.workloads.zipf

MODULES = [
    predis.cache,
    predis.demo.config,
    predis.mlops.abtest,
    predis.mlops.federated.privacy,
    predis.prefetch.model,
    predis.monitoring.metrics,
    predis.monitoring.monitor,
    predis.monitoring.prometheus,
    predis.workloads.loop,
    predis.workloads.phases,
    predis.workloads.scans,
    predis.workloads.sessions,
    predis.workloads.traces,
    predis.workloads.ycsb,
    predis.workloads.zipf,
    predis.sim.prefetcher,
]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
