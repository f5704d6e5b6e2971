"""The Kubernetes side, checked without a cluster.

`render` builds every kustomize overlay (`make manifests`); `check.check_project` returns the
findings of every offline rule: `schemas` (Kubernetes and CRD schemas), `policy` (security and
labels), `wiring` (names that must agree across Strimzi, KEDA and the services) and
`dockerfiles` (the service images). `objects` holds the plain-dict helpers they share.
"""
