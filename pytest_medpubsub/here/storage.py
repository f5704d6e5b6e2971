"""A default StorageClass for the cluster here, as kind and minikube come with one.

Strimzi's Kafka keeps its log on a persistent claim (k8s/base/kafka.yaml), so that a broker pod
killed by chaos comes back with its data. kubeadm brings no provisioner, and none can be pulled,
so `up` makes a few `local` PersistentVolumes of the node's own directories under the run
folder, behind a StorageClass with no provisioner that waits for the pod before binding (the
scheduler then picks a volume on the pod's node). The directories are world-writable: a `local`
volume keeps its directory's owner, and Kafka runs as a non-root user. `down` removes them with
the run folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from pytest_medpubsub.here import kube
from pytest_medpubsub.here.layout import NAME, Layout

STORAGE_CLASS = "medpubsub-here-local"
VOLUMES = 3  # one Kafka node needs one; the others serve a node pool split into two roles
VOLUME_SIZE = "5Gi"  # at least the 2Gi the node pool claims
RELEASED_NAMES = 'jsonpath={range .items[?(@.status.phase=="Released")]}{.metadata.name} {end}'


def volume_dirs(layout: Layout) -> list[Path]:
    return [layout.run / "volumes" / f"pv-{index}" for index in range(VOLUMES)]


def objects(layout: Layout) -> list[dict[str, Any]]:
    """The StorageClass (the cluster's default) and one `local` PV per directory."""
    storage_class: dict[str, Any] = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "WaitForFirstConsumer",
        # A released volume is not handed to the next claim with the last run's data in it.
        "reclaimPolicy": "Retain",
    }
    return [storage_class, *(_volume(path) for path in volume_dirs(layout))]


def _volume(path: Path) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"{NAME}-{path.name}", "labels": {"app.kubernetes.io/part-of": NAME}},
        "spec": {
            "capacity": {"storage": VOLUME_SIZE},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": STORAGE_CLASS,
            "local": {"path": str(path)},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/hostname",
                                    "operator": "In",
                                    "values": [NAME],
                                }
                            ]
                        }
                    ]
                }
            },
        },
    }


def ensure(layout: Layout) -> None:
    """Make the directories and apply the StorageClass and volumes (idempotent)."""
    for path in volume_dirs(layout):
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o777)
    manifest = layout.run / "storage.yaml"
    manifest.write_text(yaml.safe_dump_all(objects(layout), sort_keys=False))
    kube.kubectl(layout.kubeconfig, "apply", "--filename", str(manifest), timeout_s=60)


def recycle(layout: Layout) -> None:
    """Volumes released by a deleted claim, emptied and offered again (a second Strimzi run on
    the same cluster gets a clean log, as a freshly provisioned volume would be)."""
    released = kube.kubectl(
        layout.kubeconfig,
        "get", "persistentvolumes", "--selector", f"app.kubernetes.io/part-of={NAME}",
        "--output", RELEASED_NAMES,
    ).split()  # fmt: skip
    for name in released:
        path = layout.run / "volumes" / name.removeprefix(f"{NAME}-")
        for child in path.iterdir() if path.is_dir() else ():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        kube.kubectl(
            layout.kubeconfig, "patch", "persistentvolume", name, "--type=json",
            "--patch", '[{"op": "remove", "path": "/spec/claimRef"}]',
        )  # fmt: skip
