"""Per-process configuration: what each node's ``main.py`` is started with.

The lab plan (``vnf.lab.plan``) derives one of these per node from the topology; the
orchestrator writes it as JSON next to the node's log and passes the path on the command line.
The same dataclasses load it back, validating types, so a broken or hand-edited file is a
one-line :class:`~vnf.errors.ConfigError` naming the field.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import types
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

from vnf.errors import ConfigError

T = TypeVar("T")

GRPC_PORT = 50051
METRICS_PORT = 9100


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a node serves gRPC and Prometheus metrics (its management address)."""

    host: str
    grpc_port: int = GRPC_PORT
    metrics_port: int = METRICS_PORT

    @property
    def grpc(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"


@dataclass(frozen=True, slots=True)
class GroupConfig:
    group_id: int
    site: str
    virtual_mac: str
    pool: str
    dp: str  # initial serving DP


@dataclass(frozen=True, slots=True)
class DpRef:
    name: str
    site: str
    role: str  # "active" / "standby"
    core_ip: str


@dataclass(frozen=True, slots=True)
class RateProfileConfig:
    name: str
    up_kbps: int = 0
    down_kbps: int = 0
    burst_bytes: int = 0


@dataclass(frozen=True, slots=True)
class CableConfig:
    """The CMTS side of the control plane (docs/cable.md)."""

    shared_secret: str = "vnf-cable"  # CMTS MIC key (the CMTS authentication string)
    timestamp_window_s: float = 300.0  # a REG-REQ's config timestamp must be this recent
    ranging_timeout_s: float = 5.0  # RNG-RSP continue → the modem's unicast RNG-REQ
    registration_timeout_s: float = 15.0  # ranged → REG-REQ, and REG-RSP → REG-ACK
    t4_s: float = 30.0  # no station maintenance RNG-REQ for this long: offline
    dhcp_lease_s: int = 86400


@dataclass(frozen=True, slots=True)
class CpConfig:
    name: str
    lab: str
    netns: str
    endpoint: Endpoint
    role: str
    db_path: str
    log_path: str
    cookie_secret: str  # hex
    ac_name: str = "vnf-bras"
    service_names: tuple[str, ...] = ()
    auth_methods: tuple[str, ...] = ("chap", "pap")
    mru: int = 1492
    echo_interval_s: float = 10.0
    echo_failures: int = 3
    interim_interval_s: float = 60.0
    cookie_ttl_s: float = 30.0
    dns: tuple[str, ...] = ()
    groups: tuple[GroupConfig, ...] = ()
    dps: tuple[DpRef, ...] = ()
    rate_profiles: tuple[RateProfileConfig, ...] = ()
    router: str = ""  # gRPC address of the core router's route service
    usage_interval_s: int = 2
    heartbeat_interval_s: float = 0.05  # CP↔DP and CP↔CP, both directions
    max_sessions_per_group: int = 65534
    # The 1+1 pair and N+1 (docs/redundancy.md).
    index: int = 0  # 0 for cp-a, 1 for cp-b: epoch parity, and cp-a wins the first election
    peer: str = ""  # gRPC address of the other CP of the pair; empty without one
    peer_name: str = ""
    detect_s: float = 0.2  # silence after which a peer CP or a DP counts as failed
    headless_timeout_s: float = 120.0  # a DP without an active CP this long flushes (0: never)
    hot_standby: bool = True  # standby DPs hold every group of their site, ready to claim
    cable: CableConfig = CableConfig()


DP_IO_BACKENDS = ("ring", "mmsg", "packet")
"""The DP's frame I/O backends (data_plane.io): TPACKET_V3 ring, recvmmsg/sendmmsg, one
frame per syscall."""


@dataclass(frozen=True, slots=True)
class DpConfig:
    name: str
    lab: str
    site: str
    netns: str
    endpoint: Endpoint
    role: str
    log_path: str
    access_ifname: str
    core_ifname: str
    access_mac: str
    core_mac: str
    core_ip: str
    core_prefix_len: int
    core_gateway: str
    cp_addresses: tuple[str, ...]
    batch_size: int = 256
    io: str = "mmsg"  # frame I/O backend: ring (TPACKET_V3), mmsg, packet (data_plane.io)
    cpu: int | None = None  # the CPU the forwarding thread pins itself to (None: not pinned)
    detect_s: float = 0.2  # silence after which a CP stream counts as lost


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    name: str
    lab: str
    site: str
    netns: str
    endpoint: Endpoint
    log_path: str
    access_ifname: str
    lab_index: int
    site_index: int
    subscribers: int
    chap_share: float
    username: str
    password: str
    server_netns: str
    server_ip: str
    server_port: int = 5001
    dial_rate: float = 0.0
    max_outstanding: int = 0
    mru: int = 1492
    echo_interval_s: float = 10.0
    echo_failures: int = 3
    # Cable modems (docs/cable.md), each with one CPE behind it.
    modems: int = 0
    modem_service_class: str = "default"  # what the emulated config files name
    cable_secret: str = "vnf-cable"  # the CMTS MIC key the "TFTP server" signs with
    modem_ranging_interval_s: float = 10.0  # station maintenance (the CMTS's T4 is 3x)


@dataclass(frozen=True, slots=True)
class RouterConfig:
    name: str
    lab: str
    netns: str
    endpoint: Endpoint
    log_path: str
    core_ifname: str
    subscriber_space: str = "100.64.0.0/10"
    next_hop_space: str = "198.18.1.0/24"


NodeConfig = CpConfig | DpConfig | EmulatorConfig | RouterConfig
CONFIG_TYPES: dict[str, type[Any]] = {
    "cp": CpConfig,
    "dp": DpConfig,
    "emulator": EmulatorConfig,
    "router": RouterConfig,
}


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def dumps(config: Any) -> str:
    return json.dumps(to_dict(config), indent=2, sort_keys=True)


def loads(cls: type[T], text: str) -> T:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError("", f"not valid JSON: {exc}") from None
    return from_dict(cls, data)


def from_dict(cls: type[T], data: Any, path: str = "") -> T:
    """Build dataclass ``cls`` from plain data, checking every field's type."""
    if not isinstance(data, dict):
        raise ConfigError(path or cls.__name__, "must be an object")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    known = set()
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        known.add(f.name)
        where = f"{path}.{f.name}" if path else f.name
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(where, "missing")
            continue
        kwargs[f.name] = _convert(hints[f.name], data[f.name], where)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}.{unknown[0]}" if path else unknown[0], "unknown field")
    return cls(**kwargs)


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)  # type: ignore[arg-type]
    if origin is tuple:
        (item,) = typing.get_args(hint)[:1]
        if not isinstance(value, list | tuple):
            raise ConfigError(where, "must be a list")
        return tuple(_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _convert(option, value, where)
            except ConfigError:
                continue
        raise ConfigError(where, f"unexpected value {value!r}")
    if hint is type(None):
        if value is not None:
            raise ConfigError(where, f"must be null, not {value!r}")
        return None
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(where, f"must be a number, not {value!r}")
        return float(value)
    if hint in (int, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ConfigError(where, f"must be {hint.__name__}, not {value!r}")
        return value
    if hint is ipaddress.IPv4Network:
        return ipaddress.IPv4Network(value)
    raise ConfigError(where, f"unsupported type {hint!r}")


__all__ = [
    "CONFIG_TYPES",
    "DP_IO_BACKENDS",
    "CpConfig",
    "DpConfig",
    "DpRef",
    "EmulatorConfig",
    "Endpoint",
    "GroupConfig",
    "NodeConfig",
    "RateProfileConfig",
    "RouterConfig",
    "dumps",
    "from_dict",
    "loads",
    "to_dict",
]
