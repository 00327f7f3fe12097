"""vnf — a converged virtualized broadband access gateway (vBRAS + vCCAP) with CUPS, on real links.

This package is the shared core: errors, the domain model, wire codecs, sans-IO protocol
engines, the subscriber/modem emulator, the gRPC contract and the lab's topology model.
Only ``adapters/`` folders, ``io/`` folders and ``main.py`` files do I/O.
"""

__version__ = "0.1.0"
