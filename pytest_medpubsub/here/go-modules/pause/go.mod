// The pod sandbox's process, built here because no registry serves registry.k8s.io/pause.
module medpubsub.local/pause

go 1.24.0
