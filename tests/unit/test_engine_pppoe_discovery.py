from __future__ import annotations

import pytest

from tests.helpers_ppp import AC_MAC, CLIENT_MAC
from vnf.clock import FakeClock
from vnf.codec.pppoe import (
    DiscoveryFrame,
    DiscoveryPacket,
    PppoeCode,
    Tag,
    TagType,
    decode_discovery_frame,
    encode_discovery_frame,
)
from vnf.engines.pppoe_discovery import (
    AcDiscovery,
    ClientState,
    CookieJar,
    DiscoveryFailed,
    Dropped,
    PppoeClient,
    SessionEstablished,
    SessionTerminated,
)
from vnf.errors import LocalProtocolError

OTHER_MAC = bytes.fromhex("020000000099")
OTHER_AC = bytes.fromhex("0200000000aa")


def events(client: PppoeClient) -> list[object]:
    return list(iter(client.next_event, None))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ac() -> AcDiscovery:
    return AcDiscovery("vnf-ac", ("internet", "iptv"), CookieJar(b"secret" * 4, ttl_s=30.0))


def padi(service: bytes = b"internet", *, src: bytes = CLIENT_MAC, extra: tuple = ()) -> bytes:
    tags = (Tag(TagType.SERVICE_NAME, service), *extra)
    return encode_discovery_frame(b"\xff" * 6, src, DiscoveryPacket(PppoeCode.PADI, 0, tags))


def dial(client: PppoeClient, ac: AcDiscovery, clock: FakeClock, session_id: int = 0x22) -> None:
    client.start(clock())
    (first,) = client.frames_to_send()
    frame = decode_discovery_frame(first)
    assert ac.classify_padi(frame) is None
    client.receive(ac.make_pado(frame, AC_MAC, 4, clock()), clock())
    (padr,) = client.frames_to_send()
    verdict = ac.check_padr(decode_discovery_frame(padr), clock())
    assert verdict.ok, verdict
    client.receive(ac.make_pads(decode_discovery_frame(padr), AC_MAC, session_id), clock())


# --- CookieJar ---------------------------------------------------------------------------------


def test_cookie_round_trip_carries_the_group(clock: FakeClock) -> None:
    jar = CookieJar(b"k" * 32)
    cookie = jar.issue(CLIENT_MAC, 17, clock())
    verdict = jar.verify(cookie, CLIENT_MAC, clock.advance(29.9))
    assert (verdict.ok, verdict.group, verdict.reason) == (True, 17, "")


def test_cookie_reasons(clock: FakeClock) -> None:
    jar = CookieJar(b"k" * 32, ttl_s=5.0)
    cookie = jar.issue(CLIENT_MAC, 3, clock())
    assert jar.verify(None, CLIENT_MAC, clock()).reason == "missing_cookie"
    assert jar.verify(cookie, OTHER_MAC, clock()).reason == "forged_cookie"
    tampered = cookie[:1] + b"\x00\x00\x00\x09" + cookie[5:]  # claim another group
    assert jar.verify(tampered, CLIENT_MAC, clock()).reason == "forged_cookie"
    assert jar.verify(cookie[:-1], CLIENT_MAC, clock()).reason == "forged_cookie"
    assert CookieJar(b"x" * 32).verify(cookie, CLIENT_MAC, clock()).reason == "forged_cookie"
    late = jar.verify(cookie, CLIENT_MAC, clock.advance(5.1))
    assert (late.ok, late.reason) == (False, "expired_cookie")


def test_cookies_are_stateless_and_distinct(clock: FakeClock) -> None:
    jar = CookieJar(b"k" * 32)
    assert jar.issue(CLIENT_MAC, 1, clock()) != jar.issue(OTHER_MAC, 1, clock())
    assert jar.issue(CLIENT_MAC, 1, clock()) != jar.issue(CLIENT_MAC, 2, clock())
    assert not hasattr(jar, "__dict__")


# --- AC side -----------------------------------------------------------------------------------


def test_classify_padi(ac: AcDiscovery) -> None:
    assert ac.classify_padi(decode_discovery_frame(padi(b"internet"))) is None
    assert ac.classify_padi(decode_discovery_frame(padi(b""))) is None  # any service
    unsupported = decode_discovery_frame(padi(b"voip"))
    assert ac.classify_padi(unsupported) == "service_name_unsupported"
    no_service = encode_discovery_frame(
        b"\xff" * 6, CLIENT_MAC, DiscoveryPacket(PppoeCode.PADI, 0, ())
    )
    assert ac.classify_padi(decode_discovery_frame(no_service)) == "missing_service_name"
    bad_sid = encode_discovery_frame(
        b"\xff" * 6,
        CLIENT_MAC,
        DiscoveryPacket(PppoeCode.PADI, 7, (Tag(TagType.SERVICE_NAME, b""),)),
    )
    assert ac.classify_padi(decode_discovery_frame(bad_sid)) == "bad_session_id"
    multicast = decode_discovery_frame(padi(src=b"\x01\x00\x5e\x00\x00\x01"))
    assert ac.classify_padi(multicast) == "bad_source_mac"


def test_any_service_ac_accepts_every_name() -> None:
    ac = AcDiscovery("ac", (), CookieJar(b"k" * 32))
    assert ac.classify_padi(decode_discovery_frame(padi(b"whatever"))) is None


def test_pado_echoes_host_uniq_and_relay_session_id(ac: AcDiscovery, clock: FakeClock) -> None:
    frame = decode_discovery_frame(
        padi(
            b"iptv",
            extra=(Tag(TagType.HOST_UNIQ, b"hu"), Tag(TagType.RELAY_SESSION_ID, b"relay")),
        )
    )
    pado = decode_discovery_frame(ac.make_pado(frame, AC_MAC, 9, clock()))
    assert (pado.dst, pado.src, pado.packet.code) == (CLIENT_MAC, AC_MAC, PppoeCode.PADO)
    assert pado.packet.tag(TagType.AC_NAME) == b"vnf-ac"
    assert pado.packet.tag_values(TagType.SERVICE_NAME) == (b"iptv", b"internet")
    assert pado.packet.tag(TagType.HOST_UNIQ) == b"hu"
    assert pado.packet.tag(TagType.RELAY_SESSION_ID) == b"relay"
    cookie = pado.packet.tag(TagType.AC_COOKIE)
    assert CookieJar(b"secret" * 4).verify(cookie, CLIENT_MAC, clock()).group == 9


def padr_with(cookie: bytes | None, *, src: bytes = CLIENT_MAC) -> DiscoveryFrame:
    tags = [Tag(TagType.SERVICE_NAME, b"internet")]
    if cookie is not None:
        tags.append(Tag(TagType.AC_COOKIE, cookie))
    frame = encode_discovery_frame(AC_MAC, src, DiscoveryPacket(PppoeCode.PADR, 0, tuple(tags)))
    return decode_discovery_frame(frame)


def test_check_padr_verdicts(ac: AcDiscovery, clock: FakeClock) -> None:
    jar = CookieJar(b"secret" * 4, ttl_s=30.0)
    good = jar.issue(CLIENT_MAC, 5, clock())
    verdict = ac.check_padr(padr_with(good), clock())
    assert (verdict.ok, verdict.group, verdict.reason, verdict.service_name) == (
        True,
        5,
        "",
        b"internet",
    )
    assert ac.check_padr(padr_with(None), clock()).reason == "missing_cookie"
    assert ac.check_padr(padr_with(b"\x01" * 29), clock()).reason == "forged_cookie"
    stolen = jar.issue(OTHER_MAC, 5, clock())
    assert ac.check_padr(padr_with(stolen), clock()).reason == "forged_cookie"
    assert ac.check_padr(padr_with(good), clock.advance(31)).reason == "expired_cookie"


def test_pads_and_errors_and_padt(ac: AcDiscovery, clock: FakeClock) -> None:
    padr = padr_with(CookieJar(b"secret" * 4).issue(CLIENT_MAC, 1, clock()))
    pads = decode_discovery_frame(ac.make_pads(padr, AC_MAC, 0x1234))
    assert (pads.packet.code, pads.packet.session_id) == (PppoeCode.PADS, 0x1234)
    assert pads.packet.tag_values(TagType.SERVICE_NAME) == (b"internet",)
    error = decode_discovery_frame(
        ac.make_pads_error(padr, AC_MAC, TagType.AC_SYSTEM_ERROR, "no resources")
    )
    assert error.packet.session_id == 0
    assert error.packet.tag(TagType.AC_SYSTEM_ERROR) == b"no resources"
    padt = decode_discovery_frame(ac.make_padt(CLIENT_MAC, AC_MAC, 0x1234, "bye"))
    assert (padt.dst, padt.packet.code, padt.packet.session_id) == (
        CLIENT_MAC,
        PppoeCode.PADT,
        0x1234,
    )
    assert padt.packet.tag(TagType.GENERIC_ERROR) == b"bye"
    assert decode_discovery_frame(ac.make_padt(CLIENT_MAC, AC_MAC, 1)).packet.tags == ()


# --- client ------------------------------------------------------------------------------------


def test_client_full_discovery(ac: AcDiscovery, clock: FakeClock) -> None:
    client = PppoeClient(CLIENT_MAC, service_name="internet", host_uniq=b"\x00\x01")
    dial(client, ac, clock)
    assert events(client) == [SessionEstablished(AC_MAC, 0x22, "vnf-ac")]
    assert client.state is ClientState.SESSION and client.get_timer() is None
    assert (client.ac_mac, client.session_id) == (AC_MAC, 0x22)


def test_padr_echoes_cookie_and_relay(clock: FakeClock) -> None:
    client = PppoeClient(CLIENT_MAC, host_uniq=b"hu")
    client.start(clock())
    client.frames_to_send()
    pado = DiscoveryPacket(
        PppoeCode.PADO,
        0,
        (
            Tag(TagType.AC_NAME, b"x"),
            Tag(TagType.SERVICE_NAME, b""),
            Tag(TagType.AC_COOKIE, b"cookie!"),
            Tag(TagType.RELAY_SESSION_ID, b"relay"),
            Tag(TagType.HOST_UNIQ, b"hu"),
        ),
    )
    client.receive(encode_discovery_frame(CLIENT_MAC, AC_MAC, pado), clock())
    (padr,) = client.frames_to_send()
    frame = decode_discovery_frame(padr)
    assert frame.dst == AC_MAC and frame.packet.code == PppoeCode.PADR
    assert frame.packet.tag(TagType.AC_COOKIE) == b"cookie!"
    assert frame.packet.tag(TagType.RELAY_SESSION_ID) == b"relay"
    assert frame.packet.tag(TagType.HOST_UNIQ) == b"hu"


def test_client_retransmits_padi_doubling_then_fails(clock: FakeClock) -> None:
    client = PppoeClient(CLIENT_MAC, padi_timeout_s=1.0, padi_attempts=4)
    client.start(clock())
    sent = [(clock(), client.frames_to_send())]
    while (deadline := client.get_timer()) is not None:
        clock.set(deadline)
        client.handle_timer(clock())
        frames = client.frames_to_send()
        if frames:
            sent.append((clock(), frames))
    times = [t - 1000.0 for t, _ in sent]
    assert times == [0.0, 1.0, 3.0, 7.0]  # waits of 1, 2, 4 s
    assert all(f == sent[0][1] for _, f in sent)
    assert clock() - 1000.0 == 15.0  # and the last wait is 8 s
    assert events(client) == [DiscoveryFailed("padi_timeout")]


def test_client_retransmits_padr_on_loss(ac: AcDiscovery, clock: FakeClock) -> None:
    client = PppoeClient(CLIENT_MAC, padr_timeout_s=0.5)
    client.start(clock())
    (first,) = client.frames_to_send()
    client.receive(ac.make_pado(decode_discovery_frame(first), AC_MAC, 2, clock()), clock())
    (lost,) = client.frames_to_send()
    clock.advance(0.5)
    client.handle_timer(clock())
    (again,) = client.frames_to_send()
    assert again == lost
    assert client.get_timer() == pytest.approx(clock() + 1.0)
    verdict = ac.check_padr(decode_discovery_frame(again), clock())
    assert verdict.ok and verdict.group == 2


def test_padr_attempts_exhausted(ac: AcDiscovery, clock: FakeClock) -> None:
    client = PppoeClient(CLIENT_MAC, padr_attempts=2)
    client.start(clock())
    (first,) = client.frames_to_send()
    client.receive(ac.make_pado(decode_discovery_frame(first), AC_MAC, 2, clock()), clock())
    for _ in range(3):
        clock.advance(10)
        client.handle_timer(clock())
    assert len(client.frames_to_send()) == 2
    assert events(client) == [DiscoveryFailed("padr_timeout")]


def test_pado_with_wrong_host_uniq_is_ignored(ac: AcDiscovery, clock: FakeClock) -> None:
    client = PppoeClient(CLIENT_MAC, host_uniq=b"mine")
    client.start(clock())
    client.frames_to_send()
    foreign = decode_discovery_frame(padi(b"", extra=(Tag(TagType.HOST_UNIQ, b"theirs"),)))
    client.receive(ac.make_pado(foreign, AC_MAC, 1, clock()), clock())
    assert events(client) == [Dropped("pppoe", "host_uniq_mismatch")]
    assert client.state is ClientState.PADI_SENT
    assert client.frames_to_send() == []


def test_first_pado_wins(ac: AcDiscovery, clock: FakeClock) -> None:
    client = PppoeClient(CLIENT_MAC)
    client.start(clock())
    (first,) = client.frames_to_send()
    frame = decode_discovery_frame(first)
    other = AcDiscovery("other-ac", (), CookieJar(b"o" * 32))
    client.receive(ac.make_pado(frame, AC_MAC, 1, clock()), clock())
    client.receive(other.make_pado(frame, OTHER_AC, 1, clock()), clock())
    assert events(client) == [Dropped("pppoe", "unexpected_pado")]
    (padr,) = client.frames_to_send()
    assert decode_discovery_frame(padr).dst == AC_MAC
    # a PADS from the AC we did not choose is not ours either
    pads_other = other.make_pads(decode_discovery_frame(padr), OTHER_AC, 9)
    client.receive(pads_other, clock())
    assert events(client) == [Dropped("pppoe", "wrong_ac")]


def test_pado_for_another_service_is_ignored(clock: FakeClock) -> None:
    client = PppoeClient(CLIENT_MAC, service_name="iptv")
    client.start(clock())
    (first,) = client.frames_to_send()
    internet_only = AcDiscovery("ac", ("internet",), CookieJar(b"k" * 32))
    frame = decode_discovery_frame(first)
    assert internet_only.classify_padi(frame) == "service_name_unsupported"
    forced = internet_only.make_pado(
        DiscoveryFrame(
            frame.dst,
            frame.src,
            DiscoveryPacket(PppoeCode.PADI, 0, (Tag(TagType.SERVICE_NAME, b"internet"),)),
        ),
        AC_MAC,
        1,
        clock(),
    )
    client.receive(forced, clock())
    assert events(client) == [Dropped("pppoe", "service_name_mismatch")]


@pytest.mark.parametrize(
    ("tag_type", "reason"),
    [
        (TagType.AC_SYSTEM_ERROR, "ac_system_error"),
        (TagType.SERVICE_NAME_ERROR, "service_name_error"),
        (TagType.GENERIC_ERROR, "generic_error"),
    ],
)
def test_pads_error_fails_discovery(
    ac: AcDiscovery, clock: FakeClock, tag_type: TagType, reason: str
) -> None:
    client = PppoeClient(CLIENT_MAC)
    client.start(clock())
    (first,) = client.frames_to_send()
    client.receive(ac.make_pado(decode_discovery_frame(first), AC_MAC, 1, clock()), clock())
    (padr,) = client.frames_to_send()
    client.receive(ac.make_pads_error(decode_discovery_frame(padr), AC_MAC, tag_type, "no"), 0)
    assert events(client) == [DiscoveryFailed(reason, "no")]
    assert client.state is ClientState.CLOSED and client.get_timer() is None


def test_pads_with_session_id_zero_fails(ac: AcDiscovery, clock: FakeClock) -> None:
    client = PppoeClient(CLIENT_MAC)
    client.start(clock())
    (first,) = client.frames_to_send()
    client.receive(ac.make_pado(decode_discovery_frame(first), AC_MAC, 1, clock()), clock())
    (padr,) = client.frames_to_send()
    client.receive(ac.make_pads(decode_discovery_frame(padr), AC_MAC, 0), clock())
    assert events(client) == [DiscoveryFailed("no_session_id")]


def test_padt_from_ac_terminates(ac: AcDiscovery, clock: FakeClock) -> None:
    client = PppoeClient(CLIENT_MAC)
    dial(client, ac, clock)
    events(client)
    client.receive(ac.make_padt(CLIENT_MAC, OTHER_AC, 0x22), clock())
    client.receive(ac.make_padt(CLIENT_MAC, AC_MAC, 0x23), clock())
    assert events(client) == [Dropped("pppoe", "unexpected_padt")] * 2
    client.receive(ac.make_padt(CLIENT_MAC, AC_MAC, 0x22, "admin reset"), clock())
    assert events(client) == [SessionTerminated("padt", "admin reset")]
    assert client.state is ClientState.CLOSED


def test_close_sends_padt(ac: AcDiscovery, clock: FakeClock) -> None:
    client = PppoeClient(CLIENT_MAC)
    dial(client, ac, clock)
    client.close(clock(), "bye")
    (padt,) = client.frames_to_send()
    frame = decode_discovery_frame(padt)
    assert (frame.dst, frame.src, frame.packet.code, frame.packet.session_id) == (
        AC_MAC,
        CLIENT_MAC,
        PppoeCode.PADT,
        0x22,
    )
    assert frame.packet.tag(TagType.GENERIC_ERROR) == b"bye"


def test_close_during_discovery_sends_nothing(clock: FakeClock) -> None:
    client = PppoeClient(CLIENT_MAC)
    client.start(clock())
    client.frames_to_send()
    client.close(clock())
    assert client.frames_to_send() == [] and client.get_timer() is None


def test_garbage_and_misaddressed_frames_are_dropped(ac: AcDiscovery, clock: FakeClock) -> None:
    client = PppoeClient(CLIENT_MAC)
    client.start(clock())
    client.receive(b"\x00" * 5, clock())
    client.receive(b"\x00" * 12 + b"\x88\x63" + b"\x11\x09\x00\x00\x00\x09", clock())
    client.receive(padi(), clock())  # broadcast PADI from someone else
    to_other = DiscoveryFrame(b"\xff" * 6, OTHER_MAC, decode_discovery_frame(padi()).packet)
    client.receive(ac.make_pado(to_other, AC_MAC, 1, clock()), clock())
    assert events(client) == [
        Dropped("ethernet", "truncated"),
        Dropped("pppoe", "length_overrun"),
        Dropped("pppoe", "not_for_us"),
        Dropped("pppoe", "not_for_us"),
    ]


def test_misuse_raises() -> None:
    with pytest.raises(LocalProtocolError):
        PppoeClient(b"\x01\x00\x5e\x00\x00\x01")
    client = PppoeClient(CLIENT_MAC)
    client.start(0.0)
    with pytest.raises(LocalProtocolError):
        client.start(0.0)
    with pytest.raises(LocalProtocolError):
        CookieJar(b"")
