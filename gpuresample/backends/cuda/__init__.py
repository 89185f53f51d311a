"""Backend ``kernels``: our CUDA kernels, in four modules.

``compile``  the kernel sources, the names of their instantiations, NVRTC's compile caches;
``packing``  the tables in the host form the kernels read, laid out for one upload;
``launch``   what to launch for a block (kernels, geometry, arguments) on any :class:`Device`,
             and the device memory it allocates;
``backend``  how to launch on a GPU: :class:`CupyDevice` and :class:`KernelsBackend`.

Importing this package needs neither CuPy nor a GPU.
"""

from .backend import CupyDevice, KernelsBackend, clear_caches
from .compile import kernel_names, kernel_source_dir, module_source
from .launch import Device, Launch, kernels_scratch_bytes, run_kernels

__all__ = ["KernelsBackend", "CupyDevice", "Device", "Launch", "run_kernels", "kernel_names", "kernel_source_dir",
           "module_source", "kernels_scratch_bytes", "clear_caches"]
