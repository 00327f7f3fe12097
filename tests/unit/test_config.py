"""Node configuration files: a broken file is a one-line error naming the field."""

from __future__ import annotations

import json

import pytest

from vnf.config import DpConfig, dumps, loads
from vnf.errors import ConfigError
from vnf.lab.plan import plan_lab
from vnf.lab.topology import default_topology


def _dp() -> DpConfig:
    config = plan_lab(default_topology(), 0, "/tmp/x", "00").node("dp-site1-1").config
    assert isinstance(config, DpConfig)
    return config


def test_wrong_type_names_the_field() -> None:
    data = json.loads(dumps(_dp()))
    data["endpoint"]["grpc_port"] = "fifty"
    with pytest.raises(ConfigError) as info:
        loads(DpConfig, json.dumps(data))
    assert info.value.field == "endpoint.grpc_port"


def test_missing_and_unknown_fields() -> None:
    data = json.loads(dumps(_dp()))
    del data["core_ip"]
    with pytest.raises(ConfigError, match="core_ip: missing"):
        loads(DpConfig, json.dumps(data))
    data = json.loads(dumps(_dp()))
    data["colour"] = "blue"
    with pytest.raises(ConfigError, match="colour: unknown field"):
        loads(DpConfig, json.dumps(data))


def test_not_json() -> None:
    with pytest.raises(ConfigError, match="not valid JSON"):
        loads(DpConfig, "{nope")
