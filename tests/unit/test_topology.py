"""Topology files: defaults, and every error names its field."""

from __future__ import annotations

import ipaddress

import pytest

from vnf.errors import ConfigError
from vnf.lab.topology import default_topology, parse_topology


def test_default_lab_is_the_one_the_issue_describes() -> None:
    t = default_topology()
    assert t.name == "default"
    assert t.control_plane.nodes == 2  # the 1+1 pair
    assert t.control_plane.headless_timeout_s == 120.0
    assert t.control_plane.detect_ms == 200
    (site,) = t.sites
    assert (site.data_plane.active, site.data_plane.standby) == (2, 1)
    assert site.subscribers.pppoe == 200
    assert site.subscribers.chap_share == 0.5
    assert site.pool == ipaddress.IPv4Network("100.64.0.0/16")
    assert t.core.servers == 1


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"name": "Bad Name"}, "name", "does not match"),
        ({"sites": [{"pool": "203.0.113.0/24"}]}, "sites[0].pool", "100.64.0.0/10"),
        ({"sites": [{"pool": "not-a-prefix"}]}, "sites[0].pool", "not an IPv4 prefix"),
        ({"sites": [{"groups": 3}]}, "sites[0].groups", "power of two"),
        ({"sites": [{"data_plane": {"active": 0}}]}, "sites[0].data_plane.active", "between 1"),
        ({"sites": [{"subscribers": {"pppoe": "many"}}]}, "sites[0].subscribers.pppoe", "integer"),
        (
            {"sites": [{"subscribers": {"pppoe": 70000}, "pool": "100.64.0.0/20"}]},
            "sites[0].subscribers.pppoe",
            "do not fit",
        ),
        ({"sites": [{"subscriber": {}}]}, "sites[0].subscriber", "unknown field"),
        ({"control_plane": {"dns": ["192.0.2.53"]}}, "control_plane.dns[0]", "198.18.0.0/15"),
        ({"control_plane": {"auth_methods": ["eap"]}}, "control_plane.auth_methods[0]", "chap"),
        ({"control_plane": {"lcp": {"mru": 9000}}}, "control_plane.lcp.mru", "between"),
        ({"control_plane": {"nodes": 3}}, "control_plane.nodes", "between 1 and 2"),
        ({"control_plane": {"nodes": 0}}, "control_plane.nodes", "between 1 and 2"),
        (
            {"control_plane": {"headless_timeout_s": -1}},
            "control_plane.headless_timeout_s",
            "between 0 and 86400",
        ),
        (
            {"control_plane": {"headless_timeout_s": 86401}},
            "control_plane.headless_timeout_s",
            "between 0 and 86400",
        ),
        (
            {"control_plane": {"headless_timeout_s": "forever"}},
            "control_plane.headless_timeout_s",
            "number",
        ),
        ({"control_plane": {"detect_ms": 49}}, "control_plane.detect_ms", "between 50 and 10000"),
        (
            {"control_plane": {"detect_ms": 10001}},
            "control_plane.detect_ms",
            "between 50 and 10000",
        ),
        ({"control_plane": {"detect_ms": 0.25}}, "control_plane.detect_ms", "integer"),
        ({"control_plane": {"detect_s": 1}}, "control_plane.detect_s", "unknown field"),
        (
            {"sites": [{"name": "a"}, {"name": "a", "pool": "100.65.0.0/16"}]},
            "sites[1].name",
            "duplicate",
        ),
        ({"sites": [{"name": "a"}, {"name": "b"}]}, "sites[1].pool", "overlaps"),
        (
            {"sites": [{"subscribers": {"rate_profile": "gold"}}]},
            "sites[0].subscribers.rate_profile",
            "unknown rate profile",
        ),
        (
            {"sites": [{"subscribers": {"username": "same"}}]},
            "sites[0].subscribers.username",
            "{n}",
        ),
        ({"sites": []}, "sites", "non-empty"),
        ({"sites": [{"data_plane": {"io": "xdp"}}]}, "sites[0].data_plane.io", "ring, mmsg"),
        ({"sites": [{"data_plane": {"cpus": "all"}}]}, "sites[0].data_plane.cpus", "auto, none"),
        ({"sites": [{"data_plane": {"cpus": [-1]}}]}, "sites[0].data_plane.cpus", "CPU numbers"),
        (
            {"sites": [{"data_plane": {"batch_size": 8}}]},
            "sites[0].data_plane.batch_size",
            "between 32 and 4096",
        ),
        ([1, 2], "topology", "mapping"),
    ],
)
def test_errors_name_the_field(data: object, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_topology(data)
    assert info.value.field == field
    assert words in info.value.message


def test_a_valid_two_site_file() -> None:
    t = parse_topology(
        {
            "name": "two",
            "rate_profiles": {"gold": {"up_kbps": 100000, "down_kbps": 500000}},
            "sites": [
                {"name": "east", "pool": "100.64.0.0/16", "groups": 2},
                {
                    "name": "west",
                    "pool": "100.65.0.0/16",
                    "subscribers": {"pppoe": 10, "rate_profile": "gold", "chap_share": 0},
                },
            ],
        }
    )
    assert [s.name for s in t.sites] == ["east", "west"]
    assert t.rate_profile("gold").down_kbps == 500000


def test_control_plane_redundancy_keys() -> None:
    t = parse_topology({"control_plane": {"nodes": 1, "headless_timeout_s": 0, "detect_ms": 50}})
    assert t.control_plane.nodes == 1
    assert t.control_plane.headless_timeout_s == 0.0  # 0: a headless DP never flushes
    assert t.control_plane.detect_ms == 50
    top = parse_topology({"control_plane": {"headless_timeout_s": 86400, "detect_ms": 10000}})
    assert (top.control_plane.headless_timeout_s, top.control_plane.detect_ms) == (86400.0, 10000)
