"""Engine-pair helpers: an AUTHENTICATOR and a PEER wired back to back.

Like h11's ``ConnectionPair`` and aioquic's ``client_and_server``: packets move only when a
test calls :meth:`PppPair.transfer`, time moves only through the :class:`FakeClock`, and an
optional ``loss`` predicate drops chosen packets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from vnf.clock import FakeClock
from vnf.codec.ethernet import EtherType, peek_ethertype
from vnf.codec.pppoe import decode_discovery_frame, decode_session_frame, encode_session_frame
from vnf.emulator.client import SubscriberClient
from vnf.engines.ppp_session import (
    Addressing,
    AuthMethod,
    AuthRequested,
    Event,
    PppConfig,
    PppSession,
    Role,
)
from vnf.engines.pppoe_discovery import AcDiscovery, CookieJar
from vnf.model.addresses import ip_to_int

AC_MAC = bytes.fromhex("020000000001")
CLIENT_MAC = bytes.fromhex("020000000002")
ADDRESSING = Addressing(
    local_ip=ip_to_int("100.64.0.1"),
    peer_ip=ip_to_int("100.64.0.23"),
    dns1=ip_to_int("198.18.0.53"),
    dns2=ip_to_int("198.18.0.54"),
)
SECRETS = {"alice": b"wonderland", "bob": b"builder"}

Loss = Callable[[str, int, bytes], bool]
"""``loss(direction, protocol, payload) -> True to drop``; direction "ac>peer" / "peer>ac"."""


class Rng:
    """Deterministic ``random_bytes`` for tests (SHA-256 in counter mode)."""

    def __init__(self, seed: int) -> None:
        self._seed = seed.to_bytes(8, "big")
        self._counter = 0
        self.calls = 0

    def __call__(self, n: int) -> bytes:
        self.calls += 1
        out = b""
        while len(out) < n:
            self._counter += 1
            out += hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).digest()
        return out[:n]


def authenticate(request: AuthRequested, secrets: dict[str, bytes] = SECRETS) -> bool:
    """What the service does with an AuthRequested: look the user up and verify."""
    creds = request.credentials
    secret = secrets.get(creds.username)
    if secret is None:
        return False
    if hasattr(creds, "verify"):
        return bool(creds.verify(secret))
    return bool(creds.password == secret)


@dataclass
class PppPair:
    """AUTHENTICATOR (``ac``) and PEER (``peer``) PppSessions, back to back."""

    ac_config: PppConfig = field(default_factory=PppConfig)
    peer_config: PppConfig = field(
        default_factory=lambda: PppConfig(username="alice", password="wonderland")
    )
    addressing: Addressing = ADDRESSING
    secrets: dict[str, bytes] = field(default_factory=lambda: dict(SECRETS))
    auto_auth: bool = True
    loss: Loss | None = None
    ac_magic: int = 0x11111111
    peer_magic: int = 0x22222222
    clock: FakeClock = field(default_factory=FakeClock)

    def __post_init__(self) -> None:
        self.ac = PppSession(
            Role.AUTHENTICATOR, self.ac_config, magic=self.ac_magic, random_bytes=Rng(1)
        )
        self.peer = PppSession(
            Role.PEER, self.peer_config, magic=self.peer_magic, random_bytes=Rng(2)
        )
        self.ac_events: list[Event] = []
        self.peer_events: list[Event] = []
        self.wire: list[tuple[str, int, bytes]] = []
        self.pending_auth: list[AuthRequested] = []

    @property
    def now(self) -> float:
        return self.clock()

    def open(self) -> None:
        self.ac.open(self.now)
        self.peer.open(self.now)

    def _drain_events(self) -> None:
        while (event := self.ac.next_event()) is not None:
            self.ac_events.append(event)
            if isinstance(event, AuthRequested):
                if self.auto_auth:
                    self.answer(event)
                else:
                    self.pending_auth.append(event)
        while (event := self.peer.next_event()) is not None:
            self.peer_events.append(event)

    def answer(self, request: AuthRequested) -> None:
        ok = authenticate(request, self.secrets)
        self.ac.auth_result(
            ok,
            self.now,
            "welcome" if ok else "bad credentials",
            self.addressing if ok else None,
        )

    def transfer(self, max_rounds: int = 1000) -> int:
        """Deliver packets both ways until both sides are quiet; return how many moved."""
        moved = 0
        for _ in range(max_rounds):
            self._drain_events()
            to_peer = self.ac.packets_to_send()
            to_ac = self.peer.packets_to_send()
            if not to_peer and not to_ac:
                return moved
            for protocol, payload in to_peer:
                self.wire.append(("ac>peer", protocol, payload))
                if self.loss is None or not self.loss("ac>peer", protocol, payload):
                    moved += 1
                    self.peer.receive(protocol, payload, self.now)
            for protocol, payload in to_ac:
                self.wire.append(("peer>ac", protocol, payload))
                if self.loss is None or not self.loss("peer>ac", protocol, payload):
                    moved += 1
                    self.ac.receive(protocol, payload, self.now)
        raise AssertionError("the engines never went quiet")

    def next_timer(self) -> float | None:
        timers = [t for t in (self.ac.get_timer(), self.peer.get_timer()) if t is not None]
        return min(timers) if timers else None

    def run(self, seconds: float) -> None:
        """Deliver, then fire timers in order for ``seconds`` of fake time."""
        end = self.now + seconds
        self.transfer()
        while (deadline := self.next_timer()) is not None and deadline <= end:
            if deadline > self.now:
                self.clock.set(deadline)
            self.ac.handle_timer(self.now)
            self.peer.handle_timer(self.now)
            self.transfer()
        self.clock.set(max(end, self.now))
        self._drain_events()

    def dial(self, seconds: float = 60.0) -> None:
        self.open()
        self.run(seconds)

    def events_of(self, side: str, kind: type) -> list[object]:
        events = self.ac_events if side == "ac" else self.peer_events
        return [e for e in events if isinstance(e, kind)]


class MiniAc:
    """A minimal AC for one client: AcDiscovery plus one PppSession per PADS.

    Enough of what the control plane does to exercise :class:`SubscriberClient` end to end.
    """

    def __init__(
        self,
        clock: FakeClock,
        *,
        config: PppConfig | None = None,
        addressing: Addressing = ADDRESSING,
        secrets: dict[str, bytes] | None = None,
    ) -> None:
        self.clock = clock
        self.config = config or PppConfig()
        self.addressing = addressing
        self.secrets = SECRETS if secrets is None else secrets
        self.discovery = AcDiscovery("vnf-ac", ("",), CookieJar(b"k" * 32))
        self.sessions: dict[int, tuple[bytes, PppSession]] = {}
        self.next_session_id = 0x10
        self.out: list[bytes] = []
        self.events: list[object] = []
        self._rng = Rng(7)

    def receive(self, frame: bytes) -> None:
        now = self.clock()
        ethertype = peek_ethertype(frame)
        if ethertype == EtherType.PPPOE_DISCOVERY:
            df = decode_discovery_frame(frame)
            code = df.packet.code
            if code == 0x09 and self.discovery.classify_padi(df) is None:
                self.out.append(self.discovery.make_pado(df, AC_MAC, 1, now))
            elif code == 0x19:
                verdict = self.discovery.check_padr(df, now)
                if verdict.ok:
                    sid = self.next_session_id
                    self.next_session_id += 1
                    session = PppSession(
                        Role.AUTHENTICATOR, self.config, magic=0x0A0A0A0A, random_bytes=self._rng
                    )
                    self.sessions[sid] = (df.src, session)
                    self.out.append(self.discovery.make_pads(df, AC_MAC, sid))
                    session.open(now)
                    self._pump(sid)
            elif code == 0xA7:
                entry = self.sessions.pop(df.packet.session_id, None)
                if entry is not None:
                    entry[1].lower_down(now)
                    self.events.extend(iter(entry[1].next_event, None))
        elif ethertype == EtherType.PPPOE_SESSION:
            pf = decode_session_frame(frame)
            entry = self.sessions.get(pf.session_id)
            if entry is not None:
                entry[1].receive(pf.protocol, pf.payload, now)
                self._pump(pf.session_id)

    def handle_timer(self) -> None:
        for sid in list(self.sessions):
            self.sessions[sid][1].handle_timer(self.clock())
            self._pump(sid)

    def get_timer(self) -> float | None:
        timers = [s.get_timer() for _, s in self.sessions.values()]
        live = [t for t in timers if t is not None]
        return min(live) if live else None

    def _pump(self, sid: int) -> None:
        mac, session = self.sessions[sid]
        now = self.clock()
        while (event := session.next_event()) is not None:
            self.events.append(event)
            if isinstance(event, AuthRequested):
                ok = authenticate(event, self.secrets)
                session.auth_result(ok, now, "", self.addressing if ok else None)
            elif type(event).__name__ == "LinkDown":
                for protocol, payload in session.packets_to_send():
                    self.out.append(encode_session_frame(mac, AC_MAC, sid, protocol, payload))
                self.out.append(self.discovery.make_padt(mac, AC_MAC, sid))
                del self.sessions[sid]
                return
        for protocol, payload in session.packets_to_send():
            self.out.append(encode_session_frame(mac, AC_MAC, sid, protocol, payload))


def make_client(
    username: str = "alice",
    password: str = "wonderland",
    methods: tuple[AuthMethod, ...] = (AuthMethod.CHAP_MD5, AuthMethod.PAP),
    **kwargs: object,
) -> SubscriberClient:
    return SubscriberClient(
        CLIENT_MAC,
        username,
        password,
        methods,
        magic=0x33333333,
        random_bytes=Rng(3),
        **kwargs,  # type: ignore[arg-type]
    )


def run_client_and_ac(
    client: SubscriberClient,
    ac: MiniAc,
    clock: FakeClock,
    seconds: float,
    loss: Callable[[str, bytes], bool] | None = None,
) -> list[object]:
    """Shuttle frames between ``client`` and ``ac`` and fire timers; return client events."""
    events: list[object] = []
    end = clock() + seconds
    while True:
        for _ in range(1000):
            to_ac = client.frames_to_send()
            to_client, ac.out = ac.out, []
            if not to_ac and not to_client:
                break
            for frame in to_ac:
                if loss is None or not loss("client>ac", frame):
                    ac.receive(frame)
            for frame in to_client:
                if loss is None or not loss("ac>client", frame):
                    client.receive(frame, clock())
            events.extend(iter(client.next_event, None))
        events.extend(iter(client.next_event, None))
        timers = [t for t in (client.get_timer(), ac.get_timer()) if t is not None]
        if not timers or min(timers) > end:
            break
        clock.set(max(clock(), min(timers)))
        client.handle_timer(clock())
        ac.handle_timer()
    clock.set(max(clock(), end))
    return events


# --- hex fixtures (tests/data/*.hex, crafted with scapy; first line is the provenance) -------

DATA_DIR = __import__("pathlib").Path(__file__).parent / "data"


def fixture(name: str) -> bytes:
    """The bytes of ``tests/data/<name>.hex`` (lines after the provenance line)."""
    lines = (DATA_DIR / f"{name}.hex").read_text().splitlines()
    assert lines[0].startswith("# provenance: scapy 2.8 "), name
    return bytes.fromhex("".join(line.strip() for line in lines[1:]))


# --- driving one RFC 1661 automaton by event ---------------------------------------------


def make_lcp_engine(
    *, authenticator: bool = False, **config: object
) -> tuple[object, list[tuple[int, bytes]], list[object]]:
    """A bare LcpEngine with its output list and event list."""
    from vnf.engines.lcp import LcpEngine

    out: list[tuple[int, bytes]] = []
    events: list[object] = []
    engine = LcpEngine(
        PppConfig(**config),  # type: ignore[arg-type]
        out,
        events.append,
        authenticator=authenticator,
        magic=0x0BADCAFE,
        random_bytes=Rng(9),
    )
    return engine, out, events


def stimulate(engine: object, event: int, now: float) -> object:
    """Make ``engine`` (an LcpEngine, PEER policy) see ``event`` through its public surface."""
    from vnf.codec.ppp import control_bytes
    from vnf.engines.ppp_fsm import Event as E  # noqa: N817 (the RFC 1661 table uses E.*)

    lcp = engine  # typed loosely on purpose: tests poke at internals to reach every state
    request = b"\x01\x04\x05\xd4"
    if event == E.UP:
        return lcp.up(now)  # type: ignore[attr-defined]
    if event == E.DOWN:
        return lcp.down(now)  # type: ignore[attr-defined]
    if event == E.OPEN:
        return lcp.open(now)  # type: ignore[attr-defined]
    if event == E.CLOSE:
        return lcp.close(now)  # type: ignore[attr-defined]
    if event in (E.TO_PLUS, E.TO_MINUS):
        lcp.deadline = now  # type: ignore[attr-defined]
        lcp._restart = 1 if event == E.TO_PLUS else 0  # type: ignore[attr-defined]
        return lcp.timeout(now)  # type: ignore[attr-defined]
    if event == E.RCR_PLUS:
        packet = control_bytes(1, 0x10, b"\x01\x04\x05\xd4\x05\x06\x12\x34\x56\x78")
    elif event == E.RCR_MINUS:
        packet = control_bytes(1, 0x10, b"\x63\x02")  # unknown option: Configure-Reject
    elif event in (E.RCA, E.RCN):
        lcp._req_id = 0x20  # type: ignore[attr-defined]
        lcp._req_data = request  # type: ignore[attr-defined]
        code = 2 if event == E.RCA else 3
        packet = control_bytes(code, 0x20, request if code == 2 else b"\x01\x04\x05\x00")
    elif event == E.RTR:
        packet = control_bytes(5, 0x30, b"")
    elif event == E.RTA:
        packet = control_bytes(6, 0x30, b"")
    elif event == E.RUC:
        packet = control_bytes(0x42, 0x31, b"??")
    elif event == E.RXJ_PLUS:
        packet = control_bytes(7, 0x32, control_bytes(9, 1, b"\x00\x00\x00\x00"))
    elif event == E.RXJ_MINUS:
        packet = control_bytes(7, 0x32, control_bytes(1, 1, b""))
    else:  # RXR
        packet = control_bytes(9, 0x33, b"\x12\x34\x56\x78")
    return lcp.receive(packet, now)  # type: ignore[attr-defined]
