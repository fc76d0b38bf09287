"""Build step: the protobuf modules are generated from ../../proto when the package is built (gen_protos.py),
straight into the build folder, so generated code is never committed nor written into src/."""

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_protos  # noqa: E402


class BuildWithProtos(build_py):
    def run(self) -> None:
        super().run()
        if not self.dry_run:
            gen_protos.generate(Path(self.build_lib))


setup(cmdclass={"build_py": BuildWithProtos})
