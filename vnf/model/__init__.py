"""Domain model shared by the control plane, the data plane and the tools.

Plain frozen dataclasses and enums; no protobuf, no I/O. ``vnf.api.convert`` maps them to
and from the gRPC messages.
"""
