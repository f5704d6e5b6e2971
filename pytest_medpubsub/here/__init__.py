"""A single-node kubeadm Kubernetes cluster built on this machine (`make cluster-here`).

For machines where kind cannot run (no privileged Docker): every binary and image is built here
from the Go module proxy and Debian's packages, cached by version under the user cache, and the
cluster runs as host processes plus a containerd of its own. `python -m pytest_medpubsub.here`
drives it (`up`, `down`, `check-clean`, `load-image`, `keda-manifest`, `e2e`).
"""
