"""gRPC servers the same way everywhere: grpc.aio, standard health checking and reflection."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

MAX_MESSAGE = 64 * 1024 * 1024
OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]

Adder = Callable[[Any, grpc.aio.Server], None]


class Server:
    """A grpc.aio server with health (every service SERVING once started) and reflection."""

    def __init__(self, address: str, services: Iterable[tuple[Adder, Any, str]]) -> None:
        self.address = address
        self.server = grpc.aio.server(options=OPTIONS)
        self.health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.names = [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
        for add, servicer, full_name in services:
            add(servicer, self.server)
            self.names.append(full_name)
        reflection.enable_server_reflection([*self.names, reflection.SERVICE_NAME], self.server)
        self.port = self.server.add_insecure_port(address)
        if self.port == 0:
            raise OSError(f"cannot listen on {address}")

    async def start(self) -> None:
        await self.server.start()
        await self.set_serving(True)

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *self.names):
            await self.health.set(name, status)

    async def stop(self, grace: float = 1.0) -> None:
        await self.set_serving(False)
        await self.server.stop(grace)


def channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address, options=OPTIONS)


def sync_channel(address: str) -> grpc.Channel:
    return grpc.insecure_channel(address, options=OPTIONS)
