"""I/O helpers shared by every process's ``main.py``: namespaces, logs, gRPC servers, metrics."""
