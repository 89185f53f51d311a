"""A CPU harness for the CUDA kernels: the same sources, compiled by g++, run thread by thread."""
