"""Finding the CUDA devices this process can use, without starting CUDA where NVML can tell.

Starting CUDA (``cuInit``, which ``torch.cuda.device_count()`` and
``get_device_properties`` do) costs from tens of milliseconds to seconds on a
multi-GPU host, and a process that has started it can no longer fork workers that use
it. NVML answers the same questions (name, memory, compute capability, UUID, PCI bus) in
a few milliseconds without touching CUDA. The one thing NVML cannot say is the order in
which CUDA will number the GPUs: by default CUDA puts the fastest first. So unless the
operator chose another order, ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` is set before CUDA starts,
which makes CUDA's numbering NVML's PCI order, and ``CUDA_VISIBLE_DEVICES`` is applied
to that list as CUDA and torch apply it.

Where NVML cannot give the mapping (MIG instances, CUDA already started, an explicit
``CUDA_DEVICE_ORDER=FASTEST_FIRST``, a GPU NVML fails to describe), torch is asked
instead and CUDA starts then.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from colabhive.wire import Device

from .rules import MiB, Gpu, capabilities_for, driver_supports, dtypes_for, pci_order, visible

__all__ = ["Found", "discover", "nvml_gpus", "torch_has_cuda"]

log = logging.getLogger("colabhive.cuda")
KIND = "cuda"


@dataclass(frozen=True)
class Found:
    """A device this process can use: what the hive is told, and what the plugin keeps."""

    device: Device
    uuid: str
    """``GPU-…`` or ``MIG-…``: CUDA_VISIBLE_DEVICES=uuid pins a child process to exactly it."""
    handle: Any = None
    """NVML handle for live figures; None where NVML does not know the device."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def nvlink_active(nvml: Any, handle: Any) -> bool:
    """Whether any NVLink of the GPU is up (consumer GPUs answer NotSupported: False)."""
    for link in range(getattr(nvml, "NVML_NVLINK_MAX_LINKS", 18)):
        try:
            if nvml.nvmlDeviceGetNvLinkState(handle, link) == nvml.NVML_FEATURE_ENABLED:
                return True
        except nvml.NVMLError:
            return False  # NotSupported on the first link: no NVLink at all; later: no more links
    return False


def _mig_on(nvml: Any, handle: Any) -> bool:
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
    except nvml.NVMLError:  # pre-Ampere GPUs have no MIG
        return False
    return bool(current == getattr(nvml, "NVML_DEVICE_MIG_ENABLE", 1))


def nvml_gpus(nvml: Any) -> list[Gpu]:
    """Every NVIDIA GPU NVML sees, in CUDA's PCI_BUS_ID order."""
    gpus = []
    for i in range(nvml.nvmlDeviceGetCount()):
        h = nvml.nvmlDeviceGetHandleByIndex(i)
        try:
            memory_mb = int(nvml.nvmlDeviceGetMemoryInfo(h).total) // MiB
        except nvml.NVMLError:  # unified-memory parts (GH200, GB10) may not report it
            memory_mb = 0
        major, minor = nvml.nvmlDeviceGetCudaComputeCapability(h)
        gpus.append(
            Gpu(
                uuid=_text(nvml.nvmlDeviceGetUUID(h)),
                pci_bus_id=_text(nvml.nvmlDeviceGetPciInfo(h).busId),
                name=_text(nvml.nvmlDeviceGetName(h)),
                memory_mb=memory_mb,
                cc=(int(major), int(minor)),
                nvlink=nvlink_active(nvml, h),
                mig=_mig_on(nvml, h),
                handle=h,
            )
        )
    return pci_order(gpus)


def torch_has_cuda(torch: Any) -> bool:
    """torch was built for NVIDIA CUDA (not CPU-only, not ROCm, which reuses ``torch.cuda``)."""
    return bool(torch.backends.cuda.is_built()) and not getattr(torch.version, "hip", None)


def _device(index: int, gpu: Gpu) -> Device:
    return Device(
        kind=KIND,
        index=index,
        name=gpu.name,
        memory_mb=gpu.memory_mb,
        dtypes=dtypes_for(gpu.cc),
        capabilities=capabilities_for(gpu.cc, nvlink=gpu.nvlink, mig=gpu.mig),
    )


def _via_nvml(gpus: list[Gpu], environ: MutableMapping[str, str]) -> list[Found]:
    environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # before CUDA starts: see the module doc
    chosen = visible(environ.get("CUDA_VISIBLE_DEVICES"), [g.uuid for g in gpus])
    return [Found(_device(i, gpus[j]), gpus[j].uuid, gpus[j].handle) for i, j in enumerate(chosen)]


def _handle_by_uuid(nvml: Any, raw_uuid: str) -> tuple[str, Any]:
    """The full NVML UUID and handle for a UUID as torch prints it (without its prefix)."""
    for uuid in (raw_uuid, f"GPU-{raw_uuid}", f"MIG-{raw_uuid}"):
        try:
            return uuid, nvml.nvmlDeviceGetHandleByUUID(uuid)
        except nvml.NVMLError:
            continue
    return f"GPU-{raw_uuid}", None


def _via_torch(torch: Any, nvml: Any) -> list[Found]:
    """Ask CUDA itself (it starts here): the fallback when NVML's order cannot be trusted."""
    found = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        uuid, handle = _handle_by_uuid(nvml, str(p.uuid))
        cc = (int(p.major), int(p.minor))
        nvlink = handle is not None and nvlink_active(nvml, handle)
        device = Device(
            kind=KIND,
            index=i,
            name=str(p.name),
            memory_mb=int(p.total_memory) // MiB,
            dtypes=dtypes_for(cc),
            capabilities=capabilities_for(cc, nvlink=nvlink, mig=uuid.startswith("MIG-")),
        )
        found.append(Found(device, uuid, handle))
    return found


def discover(nvml: Any, torch: Any, environ: MutableMapping[str, str]) -> list[Found]:
    """The CUDA devices this process can use, numbered as torch will number them.

    ``nvml`` is an initialised pynvml module; ``environ`` is ``os.environ`` (passed in so
    tests can watch what is set).
    """
    if not torch_has_cuda(torch):
        log.info("the NVIDIA driver is installed but this torch has no CUDA (torch %s)", torch.__version__)
        return []
    driver = nvml.nvmlSystemGetCudaDriverVersion()
    if not driver_supports(driver, torch.version.cuda):
        log.warning("NVIDIA driver (CUDA %d) too old for torch's CUDA %s: no CUDA device", driver, torch.version.cuda)
        return []
    try:
        gpus = nvml_gpus(nvml)
    except nvml.NVMLError as exc:  # one GPU NVML cannot describe: CUDA may still see it, so ask CUDA
        log.warning("NVML could not describe every GPU (%s): asking torch.cuda instead", exc)
        return _via_torch(torch, nvml)
    order = environ.get("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    if torch.cuda.is_initialized() or order != "PCI_BUS_ID":
        return _via_torch(torch, nvml)
    if any(g.mig for g in gpus) or environ.get("CUDA_VISIBLE_DEVICES", "").startswith("MIG-"):
        return _via_torch(torch, nvml)
    return _via_nvml(gpus, environ)
