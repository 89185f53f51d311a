"""Wheel build hook: compile the ahead-of-time CPU loops (gpuresample/_native) into the wheel.

Runs ``gpuresample/_native/build.py`` (standard library only) when a wheel (or an editable
install) is built. The library is written next to its sources, where the package looks
first, and the wheel is tagged for this platform. Without a C compiler the wheel is built
without it: the package then builds the library at first use, or runs the Numba loops
(see gpuresample/backends/_native.py).
"""

from __future__ import annotations

import importlib.util
import sys
import sysconfig
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

NATIVE = Path(__file__).resolve().parent / "gpuresample" / "_native"


class NativeLoopsHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel":
            return
        spec = importlib.util.spec_from_file_location("_gpuresample_native_build", NATIVE / "build.py")
        build = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(build)
        try:
            libraries = build.build(NATIVE, NATIVE)
        except (OSError, RuntimeError) as error:
            print(f"gpuresample: the ahead-of-time CPU loops were not built ({error}); "
                  "the package will build them at first use or run the Numba loops", file=sys.stderr)
            return
        build_data["pure_python"] = False
        # a plain shared library (no Python ABI): any Python 3, this platform only
        build_data["tag"] = f"py3-none-{sysconfig.get_platform().replace('-', '_').replace('.', '_')}"
        if version != "editable":
            for library in libraries:
                build_data["force_include"][str(library)] = f"gpuresample/_native/{library.name}"
