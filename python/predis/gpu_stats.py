"""GPU memory and utilization for ``Cache.stats()`` through NVML (``nvidia-ml-py``, the
``gpu`` extra). Where NVML is missing or fails, there is nothing to report: the caller
gets None, never zeros.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger("predis")

_lock = threading.Lock()
_nvml: Any = None  # the pynvml module once nvmlInit succeeded
_nvml_failed = False


def _load_nvml() -> Any:
    global _nvml, _nvml_failed  # noqa: PLW0603 - NVML is initialised once per process
    with _lock:
        if _nvml is not None or _nvml_failed:
            return _nvml
        try:
            import pynvml  # noqa: PLC0415 - optional: the gpu extra

            pynvml.nvmlInit()
        except Exception as exc:  # ImportError or any NVMLError: no NVML
            _nvml_failed = True
            log.info("predis: no GPU stats (NVML unavailable: %s)", exc)
            return None
        _nvml = pynvml
        return _nvml


def device_stats(pci_bus_id: str) -> dict[str, int] | None:
    """Memory and utilization of the GPU at ``pci_bus_id`` (as CUDA names it), or None.

    Keys: ``gpu_memory_used_bytes``, ``gpu_memory_total_bytes``, ``gpu_utilization_percent``
    (the share of the last sample period a kernel ran) and ``gpu_memory_utilization_percent``
    (the share in which device memory was read or written).
    """
    nvml = _load_nvml()
    if nvml is None or not pci_bus_id:
        return None
    try:
        # bytes: older nvidia-ml-py passes the argument straight to a c_char_p.
        handle = nvml.nvmlDeviceGetHandleByPciBusId(pci_bus_id.encode())
        mem = nvml.nvmlDeviceGetMemoryInfo(handle)
        util = nvml.nvmlDeviceGetUtilizationRates(handle)
    except Exception as exc:  # any NVMLError: report nothing rather than zeros
        log.debug("predis: NVML query for %s failed: %s", pci_bus_id, exc)
        return None
    return {
        "gpu_memory_used_bytes": int(mem.used),
        "gpu_memory_total_bytes": int(mem.total),
        "gpu_utilization_percent": int(util.gpu),
        "gpu_memory_utilization_percent": int(util.memory),
    }
