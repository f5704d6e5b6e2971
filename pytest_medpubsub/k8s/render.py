"""Render every kustomize overlay (k8s + keda) to one YAML file per overlay.

`make manifests` runs `python -m pytest_medpubsub.k8s.render --out build/manifests`; the cluster
platforms apply `build/manifests/<overlay>.yaml` and the offline checks read the same renders, so
what is checked is exactly what a cluster gets. kustomize comes from `kubectl kustomize` or a
`kustomize` binary (the Makefile installs one into .venv/bin when neither is present).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

OVERLAYS_DIR = Path("k8s/overlays")
SOURCES = ("k8s", "keda")
RENDER_TIMEOUT_S = 60.0


class RenderError(Exception):
    """kustomize is missing or failed; the message says what to do."""


def overlays(project_dir: Path) -> list[str]:
    """The overlay names: folders of k8s/overlays with a kustomization.yaml."""
    root = project_dir / OVERLAYS_DIR
    return sorted(path.parent.name for path in root.glob("*/kustomization.yaml"))


def kustomize_command() -> list[str]:
    """`kubectl kustomize`, else `kustomize build` (PATH, then this interpreter's bin folder)."""
    kubectl = shutil.which("kubectl")
    if kubectl:
        return [kubectl, "kustomize"]
    beside_python = Path(sys.executable).parent / "kustomize"
    kustomize = shutil.which("kustomize") or (
        str(beside_python) if beside_python.exists() else None
    )
    if kustomize:
        return [kustomize, "build"]
    raise RenderError(
        "neither kubectl nor kustomize is installed; run `make manifests` (it installs kustomize "
        "into .venv/bin with Go) or install kubectl."
    )


def render(overlay_dir: Path) -> str:
    """The multi-document YAML kustomize builds from `overlay_dir`."""
    command = [*kustomize_command(), str(overlay_dir)]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=RENDER_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise RenderError(f"{' '.join(command)} took more than {RENDER_TIMEOUT_S:g} s") from None
    if result.returncode != 0:
        raise RenderError(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return result.stdout


def render_all(project_dir: Path, out: Path) -> dict[str, Path]:
    """Render every overlay to `out/<overlay>.yaml`; the written files by overlay."""
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for overlay in overlays(project_dir):
        target = out / f"{overlay}.yaml"
        target.write_text(render(project_dir / OVERLAYS_DIR / overlay), encoding="utf-8")
        written[overlay] = target
    if not written:
        raise RenderError(f"no overlays under {project_dir / OVERLAYS_DIR}")
    return written


def is_stale(project_dir: Path, rendered: Path) -> bool:
    """True when `rendered` is missing or older than any source of the renders."""
    if not rendered.exists():
        return True
    built = rendered.stat().st_mtime
    return any(
        path.stat().st_mtime > built
        for source in SOURCES
        for path in (project_dir / source).rglob("*")
        if path.is_file()
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_medpubsub.k8s.render",
        description="Render every overlay of k8s/overlays (with keda/) to OUT/<overlay>.yaml.",
    )
    parser.add_argument("--out", type=Path, default=Path("build/manifests"), help="output folder")
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="the checkout")
    arguments = parser.parse_args(argv)
    try:
        written = render_all(arguments.project, arguments.out)
    except RenderError as error:
        print(f"manifests: {error}", file=sys.stderr)
        return 1
    for overlay, path in written.items():
        print(f"{overlay}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
