"""Regenerate the committed protobuf/gRPC stubs: ``make proto`` (``python -m vnf.api.codegen``).

Stubs are generated with ``-I <repo root>`` so they import each other as ``vnf.api.x_pb2``;
they are committed so that a checkout works without grpcio-tools, and never edited by hand.
"""

from __future__ import annotations

import os
import pathlib
import sys

from grpc_tools import protoc  # type: ignore[import-untyped]

API = pathlib.Path(__file__).resolve().parent
ROOT = API.parent.parent


def main() -> int:
    protos = sorted(str(p.relative_to(ROOT)) for p in API.glob("*.proto"))
    include = pathlib.Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{ROOT}",
        f"-I{include}",
        f"--python_out={ROOT}",
        f"--grpc_python_out={ROOT}",
        f"--mypy_out={ROOT}",
        f"--mypy_grpc_out={ROOT}",
        *protos,
    ]
    # The mypy plugins live next to the interpreter (the virtualenv's bin/).
    os.environ["PATH"] = (
        f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )
    code = int(protoc.main(args))
    if code != 0:
        print("protoc failed", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
