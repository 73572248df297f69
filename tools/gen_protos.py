"""Regenerates the Python protobuf/gRPC code and type stubs from proto/ into gen/ (one command)."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
GEN_DIR = ROOT / "gen"


def generate(out_dir: Path) -> None:
    """Runs protoc (from grpcio-tools) with the mypy-protobuf plugins into out_dir."""
    import grpc_tools
    from grpc_tools import protoc  # dev dependency: only needed to regenerate

    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    plugin_dir = Path(sys.executable).parent
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--plugin=protoc-gen-mypy={plugin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={plugin_dir / 'protoc-gen-mypy_grpc'}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for folder in [out_dir / "marksman", *(p for p in (out_dir / "marksman").rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
        (folder / "py.typed").touch()


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def stale_files() -> list[str]:
    """Files of gen/ that differ from a fresh generation (empty when up to date)."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh, current = tree(Path(tmp)), tree(GEN_DIR) if GEN_DIR.exists() else {}
    current = {k: v for k, v in current.items() if "__pycache__" not in k}
    return sorted(k for k in fresh.keys() | current.keys() if fresh.get(k) != current.get(k))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if gen/ is stale instead of writing")
    if parser.parse_args().check:
        stale = stale_files()
        if stale:
            raise SystemExit("generated code is stale; run `make proto`: " + ", ".join(stale))
        print("generated code is up to date")
        return
    shutil.rmtree(GEN_DIR / "marksman", ignore_errors=True)
    GEN_DIR.mkdir(exist_ok=True)
    generate(GEN_DIR)
    print(f"generated into {GEN_DIR.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
