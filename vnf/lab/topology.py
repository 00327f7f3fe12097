"""The lab's topology file: a containerlab-like YAML description, validated into dataclasses.

Every error names the offending field as a dotted path (``sites[0].pool: must be inside
100.64.0.0/10``) so the CLI can print one line and exit non-zero. Unknown keys are errors
too: a typo must not silently fall back to a default.

Schema (every key optional; the defaults are the default lab)::

    name: default
    control_plane:
      nodes: 2                    # 2: the 1+1 pair cp-a + cp-b; 1: a single CP
      headless_timeout_s: 120     # a DP without an active CP this long flushes (0: never)
      detect_ms: 200              # silence after which a peer CP or a DP counts as failed
      hot_standby: true           # standby DPs hold their site's sessions, ready to claim
      ac_name: vnf-bras
      service_names: []           # empty: serve any Service-Name
      auth_methods: [chap, pap]   # offered in LCP, in preference order
      interim_interval_s: 60
      cookie_ttl_s: 30
      lcp: {mru: 1492, echo_interval_s: 10, echo_failures: 3}
      dns: [198.18.2.53, 198.18.2.54]
    rate_profiles:
      default: {up_kbps: 0, down_kbps: 0, burst_bytes: 0}
    sites:
      - name: site1
        data_plane: {active: 2, standby: 1}
        groups: 4
        pool: 100.64.0.0/16
        subscribers:
          pppoe: 200
          chap_share: 0.5
          username: "user{n:05d}@site1"
          password: "pw-{n:05d}"
          rate_profile: default
        modems:                   # DOCSIS-like cable modems, one CPE behind each
          count: 100
          service_class: default  # a rate profile: the modems' service class
        dial: {autostart: true, rate: 0, max_outstanding: 0}
    cable:
      shared_secret: vnf-cable    # the CMTS MIC key (config files are signed with it)
      ranging_interval_s: 10      # station maintenance; a modem silent for 3x is offline
    core:
      servers: 1
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vnf.config import DP_IO_BACKENDS as IO_BACKENDS
from vnf.errors import ConfigError

SUBSCRIBER_SPACE = ipaddress.IPv4Network("100.64.0.0/10")
FABRIC_SPACE = ipaddress.IPv4Network("198.18.0.0/15")
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,15}$")
SITE_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")
MAX_SUBSCRIBERS_PER_SITE = 100_000
DEFAULT_POOL = ipaddress.IPv4Network("100.64.0.0/16")


@dataclass(frozen=True, slots=True)
class LcpSettings:
    mru: int = 1492
    echo_interval_s: float = 10.0
    echo_failures: int = 3


@dataclass(frozen=True, slots=True)
class ControlPlaneSpec:
    nodes: int = 2
    ac_name: str = "vnf-bras"
    service_names: tuple[str, ...] = ()
    auth_methods: tuple[str, ...] = ("chap", "pap")
    interim_interval_s: float = 60.0
    cookie_ttl_s: float = 30.0
    lcp: LcpSettings = LcpSettings()
    dns: tuple[str, ...] = ("198.18.2.53", "198.18.2.54")
    headless_timeout_s: float = 120.0
    detect_ms: int = 200
    hot_standby: bool = True


@dataclass(frozen=True, slots=True)
class RateProfileSpec:
    name: str
    up_kbps: int = 0
    down_kbps: int = 0
    burst_bytes: int = 0


@dataclass(frozen=True, slots=True)
class DataPlaneSpec:
    active: int = 2
    standby: int = 1
    io: str = "mmsg"
    """Frame I/O backend of the workers (data_plane.io.BACKENDS). Not ``ring`` by default
    yet: its blocks reach the worker up to a few jiffies late at low rates, which the 10 ms
    token buckets do not absorb (docs/performance.md)."""
    batch_size: int = 256
    cpus: tuple[int, ...] | None = None
    """CPUs to pin the workers' forwarding threads to, round robin over the lab's workers;
    empty (``auto``): every CPU the lab may use; None (``none``, the default): not pinned.
    A lab shares its host's cores among every node, where a pinned thread waits for its one
    core; pin when workers have cores of their own."""


@dataclass(frozen=True, slots=True)
class SubscribersSpec:
    pppoe: int = 200
    chap_share: float = 0.5
    username: str = "user{n:05d}@{site}"
    password: str = "pw-{n:05d}"
    rate_profile: str = "default"


@dataclass(frozen=True, slots=True)
class ModemsSpec:
    count: int = 100
    service_class: str = "default"


@dataclass(frozen=True, slots=True)
class CableSpec:
    shared_secret: str = "vnf-cable"
    ranging_interval_s: float = 10.0


@dataclass(frozen=True, slots=True)
class DialSpec:
    autostart: bool = True
    rate: float = 0.0
    max_outstanding: int = 0


@dataclass(frozen=True, slots=True)
class SiteSpec:
    name: str
    data_plane: DataPlaneSpec = DataPlaneSpec()
    groups: int = 4
    pool: ipaddress.IPv4Network = DEFAULT_POOL
    subscribers: SubscribersSpec = SubscribersSpec()
    dial: DialSpec = DialSpec()
    modems: ModemsSpec = ModemsSpec()


@dataclass(frozen=True, slots=True)
class CoreSpec:
    servers: int = 1


@dataclass(frozen=True, slots=True)
class Topology:
    name: str = "default"
    control_plane: ControlPlaneSpec = ControlPlaneSpec()
    rate_profiles: tuple[RateProfileSpec, ...] = (RateProfileSpec("default"),)
    sites: tuple[SiteSpec, ...] = (SiteSpec("site1"),)
    core: CoreSpec = field(default_factory=CoreSpec)
    cable: CableSpec = CableSpec()

    def rate_profile(self, name: str) -> RateProfileSpec:
        for profile in self.rate_profiles:
            if profile.name == name:
                return profile
        raise KeyError(name)


def default_topology() -> Topology:
    """The default lab: one site, the CP pair, 2 active DPs + 1 standby, 200 PPPoE
    subscribers and 100 cable modems."""
    return parse_topology({})


# ---------------------------------------------------------------------------------------------
# Parsing: a tiny typed reader over plain YAML data that reports dotted field paths.


class _Reader:
    """Reads one mapping; every value access validates type and names the field on error."""

    def __init__(self, data: Any, path: str) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(path or "topology", "must be a mapping")
        self.data = data
        self.path = path
        self.seen: set[str] = set()

    def field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: str) -> Any:
        self.seen.add(key)
        return self.data.get(key)

    def integer(self, key: str, default: int, lo: int, hi: int) -> int:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self.field(key), f"must be an integer, not {value!r}")
        if not lo <= value <= hi:
            raise ConfigError(self.field(key), f"must be between {lo} and {hi}, not {value}")
        return value

    def number(self, key: str, default: float, lo: float, hi: float) -> float:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(self.field(key), f"must be a number, not {value!r}")
        if not lo <= float(value) <= hi:
            raise ConfigError(self.field(key), f"must be between {lo:g} and {hi:g}, not {value}")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(self.field(key), f"must be true or false, not {value!r}")
        return value

    def text(self, key: str, default: str, pattern: re.Pattern[str] | None = None) -> str:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise ConfigError(self.field(key), f"must be a string, not {value!r}")
        if pattern is not None and not pattern.match(value):
            raise ConfigError(self.field(key), f"{value!r} does not match {pattern.pattern}")
        return value

    def texts(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(self.field(key), "must be a list of strings")
        return tuple(value)

    def sub(self, key: str) -> _Reader:
        return _Reader(self._get(key), self.field(key))

    def items(self, key: str) -> list[_Reader] | None:
        value = self._get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not value:
            raise ConfigError(self.field(key), "must be a non-empty list")
        return [_Reader(v, f"{self.field(key)}[{i}]") for i, v in enumerate(value)]

    def done(self) -> None:
        """Reject keys nobody read: typos must not fall back to defaults silently."""
        unknown = sorted(str(k) for k in self.data if k not in self.seen)
        if unknown:
            raise ConfigError(self.field(unknown[0]), "unknown field")


def parse_topology(data: Any) -> Topology:
    """Validate plain data (as loaded from YAML) into a :class:`Topology`."""
    top = _Reader(data, "")
    name = top.text("name", "default", NAME_RE)
    control_plane = _parse_control_plane(top.sub("control_plane"))
    profiles = _parse_rate_profiles(top, "rate_profiles")
    site_readers = top.items("sites")
    sites = (
        tuple(_parse_site(r, i) for i, r in enumerate(site_readers))
        if site_readers
        else (_parse_site(_Reader({}, "sites[0]"), 0),)
    )
    core_reader = top.sub("core")
    core = CoreSpec(servers=core_reader.integer("servers", 1, 1, 8))
    core_reader.done()
    cable_reader = top.sub("cable")
    secret = cable_reader.text("shared_secret", "vnf-cable")
    if not 1 <= len(secret.encode()) <= 64:
        raise ConfigError(cable_reader.field("shared_secret"), "must be 1..64 bytes")
    cable = CableSpec(
        shared_secret=secret,
        ranging_interval_s=cable_reader.number("ranging_interval_s", 10.0, 0.1, 300.0),
    )
    cable_reader.done()
    top.done()
    topology = Topology(name, control_plane, profiles, sites, core, cable)
    _check_cross_references(topology)
    return topology


def _parse_control_plane(r: _Reader) -> ControlPlaneSpec:
    lcp_reader = r.sub("lcp")
    lcp = LcpSettings(
        mru=lcp_reader.integer("mru", 1492, 576, 1492),
        echo_interval_s=lcp_reader.number("echo_interval_s", 10.0, 0.0, 3600.0),
        echo_failures=lcp_reader.integer("echo_failures", 3, 1, 100),
    )
    lcp_reader.done()
    methods = r.texts("auth_methods", ("chap", "pap"))
    for i, method in enumerate(methods):
        if method not in ("chap", "pap"):
            raise ConfigError(f"{r.field('auth_methods')}[{i}]", f"{method!r} is not chap or pap")
    if not methods:
        raise ConfigError(r.field("auth_methods"), "must name at least one method")
    dns = r.texts("dns", ("198.18.2.53", "198.18.2.54"))
    for i, server in enumerate(dns):
        _check_address_in(f"{r.field('dns')}[{i}]", server, FABRIC_SPACE)
    if len(dns) > 2:
        raise ConfigError(r.field("dns"), "IPCP carries at most two DNS servers")
    spec = ControlPlaneSpec(
        nodes=r.integer("nodes", 2, 1, 2),
        ac_name=r.text("ac_name", "vnf-bras"),
        service_names=r.texts("service_names", ()),
        auth_methods=methods,
        interim_interval_s=r.number("interim_interval_s", 60.0, 1.0, 86400.0),
        cookie_ttl_s=r.number("cookie_ttl_s", 30.0, 1.0, 3600.0),
        lcp=lcp,
        dns=dns,
        headless_timeout_s=r.number("headless_timeout_s", 120.0, 0.0, 86400.0),
        detect_ms=r.integer("detect_ms", 200, 50, 10_000),
        hot_standby=r.flag("hot_standby", True),
    )
    if not spec.ac_name or len(spec.ac_name.encode()) > 64:
        raise ConfigError(r.field("ac_name"), "must be 1..64 bytes")
    r.done()
    return spec


def _parse_rate_profiles(top: _Reader, key: str) -> tuple[RateProfileSpec, ...]:
    raw = top._get(key)
    if raw is None:
        return (RateProfileSpec("default"),)
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(key, "must be a mapping of profile name to rates")
    profiles = []
    for name, body in raw.items():
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ConfigError(f"{key}.{name}", "profile names are lowercase words")
        r = _Reader(body, f"{key}.{name}")
        profiles.append(
            RateProfileSpec(
                name=name,
                up_kbps=r.integer("up_kbps", 0, 0, 100_000_000),
                down_kbps=r.integer("down_kbps", 0, 0, 100_000_000),
                burst_bytes=r.integer("burst_bytes", 0, 0, 1 << 30),
            )
        )
        r.done()
    if not any(p.name == "default" for p in profiles):
        profiles.append(RateProfileSpec("default"))  # unlimited, for subscribers naming none
    return tuple(profiles)


def _parse_site(r: _Reader, index: int) -> SiteSpec:
    name = r.text("name", f"site{index + 1}", SITE_RE)
    dp_reader = r.sub("data_plane")
    data_plane = DataPlaneSpec(
        active=dp_reader.integer("active", 2, 1, 16),
        standby=dp_reader.integer("standby", 1, 0, 4),
        io=dp_reader.text("io", "mmsg"),
        batch_size=dp_reader.integer("batch_size", 256, 32, 4096),
        cpus=_parse_cpus(dp_reader, "cpus"),
    )
    if data_plane.io not in IO_BACKENDS:
        raise ConfigError(
            dp_reader.field("io"), f"{data_plane.io!r} is not one of {', '.join(IO_BACKENDS)}"
        )
    dp_reader.done()
    groups = r.integer("groups", 4, 1, 64)
    if groups & (groups - 1):
        raise ConfigError(r.field("groups"), f"must be a power of two, not {groups}")
    pool = _parse_pool(r, "pool")
    group_prefix = pool.prefixlen + groups.bit_length() - 1
    if group_prefix > 28:
        raise ConfigError(r.field("groups"), f"{groups} groups leave less than a /28 per group")
    sub_reader = r.sub("subscribers")
    subscribers = SubscribersSpec(
        pppoe=sub_reader.integer("pppoe", 200, 0, MAX_SUBSCRIBERS_PER_SITE),
        chap_share=sub_reader.number("chap_share", 0.5, 0.0, 1.0),
        username=sub_reader.text("username", "user{n:05d}@{site}"),
        password=sub_reader.text("password", "pw-{n:05d}"),
        rate_profile=sub_reader.text("rate_profile", "default"),
    )
    for key, template in (("username", subscribers.username), ("password", subscribers.password)):
        try:
            rendered = template.format(n=1, site=name)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(sub_reader.field(key), f"bad template: {exc}") from None
        if not rendered or len(rendered.encode()) > 255:
            raise ConfigError(sub_reader.field(key), "must render to 1..255 bytes")
    if subscribers.pppoe > 1 and subscribers.username.format(
        n=1, site=name
    ) == subscribers.username.format(n=2, site=name):
        raise ConfigError(sub_reader.field("username"), "must contain {n} to be unique")
    sub_reader.done()
    modem_reader = r.sub("modems")
    modems = ModemsSpec(
        count=modem_reader.integer("count", 100, 0, MAX_SUBSCRIBERS_PER_SITE),
        service_class=modem_reader.text("service_class", "default"),
    )
    modem_reader.done()
    usable = (pool.num_addresses >> (groups.bit_length() - 1)) - 3  # net, gateway, broadcast
    if subscribers.pppoe + modems.count > usable * groups:
        raise ConfigError(
            sub_reader.field("pppoe"),
            f"{subscribers.pppoe} subscribers and {modems.count} modems do not fit in {pool} "
            f"({usable * groups} addresses)",
        )
    dial_reader = r.sub("dial")
    dial = DialSpec(
        autostart=dial_reader.flag("autostart", True),
        rate=dial_reader.number("rate", 0.0, 0.0, 100_000.0),
        max_outstanding=dial_reader.integer("max_outstanding", 0, 0, 100_000),
    )
    dial_reader.done()
    r.done()
    return SiteSpec(name, data_plane, groups, pool, subscribers, dial, modems)


def _parse_cpus(r: _Reader, key: str) -> tuple[int, ...] | None:
    """``none`` (not pinned, the default), ``auto`` (round robin over every CPU the lab may
    use) or a list of CPU numbers."""
    value = r._get(key)
    if value is None or value == "none":
        return None
    if value == "auto":
        return ()
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 4096 for v in value)
    ):
        raise ConfigError(r.field(key), "must be auto, none or a list of CPU numbers")
    return tuple(value)


def _parse_pool(r: _Reader, key: str) -> ipaddress.IPv4Network:
    text = r.text(key, "100.64.0.0/16")
    try:
        pool = ipaddress.IPv4Network(text)
    except ValueError as exc:
        raise ConfigError(r.field(key), f"not an IPv4 prefix: {exc}") from None
    if not pool.subnet_of(SUBSCRIBER_SPACE):
        raise ConfigError(r.field(key), f"{pool} must be inside {SUBSCRIBER_SPACE}")
    return pool


def _check_address_in(field_path: str, text: str, space: ipaddress.IPv4Network) -> None:
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise ConfigError(field_path, f"{text!r} is not an IPv4 address") from None
    if address not in space:
        raise ConfigError(field_path, f"{address} must be inside {space}")


def _check_cross_references(topology: Topology) -> None:
    names = {p.name for p in topology.rate_profiles}
    seen_sites: set[str] = set()
    pools: list[tuple[int, ipaddress.IPv4Network]] = []
    for i, site in enumerate(topology.sites):
        if site.name in seen_sites:
            raise ConfigError(f"sites[{i}].name", f"duplicate site {site.name!r}")
        seen_sites.add(site.name)
        if site.subscribers.rate_profile not in names:
            raise ConfigError(
                f"sites[{i}].subscribers.rate_profile",
                f"unknown rate profile {site.subscribers.rate_profile!r}",
            )
        if site.modems.service_class not in names:
            raise ConfigError(
                f"sites[{i}].modems.service_class",
                f"unknown rate profile {site.modems.service_class!r}",
            )
        for j, other in pools:
            if site.pool.overlaps(other):
                raise ConfigError(f"sites[{i}].pool", f"overlaps sites[{j}].pool {other}")
        pools.append((i, site.pool))
    if len(topology.sites) > 40:
        raise ConfigError("sites", "at most 40 sites")
