"""Lifecycle of the lab's processes: start them in their namespaces, watch their health,
restart what fails, stop them in order (the local backend; Kubernetes is a later backend)."""
