"""Session-id and address allocation: nothing handed out twice, exhaustion is clean."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from control_plane.pools import AddressPool, IdAllocator
from vnf.errors import Conflict


def test_exhaustion_then_release() -> None:
    ids = IdAllocator(1, 3)
    got = [ids.allocate() for _ in range(3)]
    assert sorted(got) == [1, 2, 3]  # type: ignore[type-var]
    assert ids.allocate() is None
    assert ids.release(2)
    assert ids.allocate() == 2


def test_double_free_is_reported_not_fatal() -> None:
    ids = IdAllocator(1, 10)
    value = ids.allocate()
    assert value is not None
    assert ids.release(value)
    assert not ids.release(value)
    assert ids.free == 10


def test_claim_conflicts() -> None:
    ids = IdAllocator(1, 10)
    ids.claim(5)
    with pytest.raises(Conflict):
        ids.claim(5)
    assert 5 not in [ids.allocate() for _ in range(9)]


def test_pool_never_hands_out_network_gateway_or_broadcast() -> None:
    pool = AddressPool(ipaddress.IPv4Network("100.64.0.0/29"))
    addresses = []
    while (a := pool.allocate()) is not None:
        addresses.append(ipaddress.IPv4Address(a))
    assert [str(a) for a in addresses] == [f"100.64.0.{i}" for i in range(2, 7)]
    assert pool.gateway == int(ipaddress.IPv4Address("100.64.0.1"))


@settings(max_examples=200)
@given(st.lists(st.booleans(), max_size=300))
def test_allocations_are_unique_under_any_sequence(ops: list[bool]) -> None:
    ids = IdAllocator(1, 50)
    held: set[int] = set()
    for allocate in ops:
        if allocate or not held:
            value = ids.allocate()
            if value is None:
                assert len(held) == 50
                continue
            assert value not in held
            held.add(value)
        else:
            assert ids.release(held.pop())
        assert ids.free == 50 - len(held)
