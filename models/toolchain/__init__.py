"""dust-serve model toolchain: the DUST reference architecture, training, ONNX export and golden fixtures.

Run as `/usr/bin/python3 -m models.toolchain <command>` from the repository root (README.md).
"""
