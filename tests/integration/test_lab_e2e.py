"""PPPoE subscribers end to end through separated CP and DP processes on real links.

One lab (the CP pair, 2 active DP workers + 1 standby, core router + server, emulator with 20
subscribers) serves the tests of this module in order: dial, look, capture, push traffic,
account, terminate, attach a foreign client.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import urllib.request

import pytest

from tests.integration.conftest import RunningLab
from tests.integration.helpers import (
    capture,
    counters,
    in_netns,
    one_line_error,
    run_cli,
    wait_for,
)
from vnf.adapters.packet import open_packet_socket
from vnf.api import common_pb2
from vnf.lab.adapters.operations import dial_and_wait, run_traffic, traffic_rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _emulator(lab: RunningLab) -> tuple[str, str]:
    (emu,) = [n for n in lab.state.nodes if n.kind == "emulator"]
    return emu.netns, emu.name


def test_every_node_serves_and_status_lists_it(lab: RunningLab) -> None:
    result = run_cli(lab.name, "lab", "status", "--output", "json")
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    kinds = sorted(n["kind"] for n in status["nodes"])
    assert kinds == ["cp", "cp", "dp", "dp", "dp", "emulator", "router", "server"]
    for node in status["nodes"]:
        if node["kind"] != "server":
            assert node["health"] == "SERVING", node
            assert node["state"] == "running"
    assert status["cp"]["role"] == "active" and status["cp"]["epoch"] >= 1
    # The 1+1 pair (the default): one active, one standby, each naming the other as peer.
    assert sorted(c["role"] for c in status["cps"]) == ["active", "standby"]
    assert {c["cp"] for c in status["cps"]} == {"cp-a", "cp-b"}
    assert all(c["peer"] != "-" for c in status["cps"])
    assert status["faults"] == []
    serving = {g["dp"] for g in status["groups"]}
    assert serving == {"dp-site1-1", "dp-site1-2"}
    table = run_cli(lab.name, "lab", "status")
    assert "metrics" in table.output and ":9100/metrics" in table.output


def test_dial_every_subscriber_and_list_the_sessions(lab: RunningLab) -> None:
    netns_name, _ = _emulator(lab)
    with capture(netns_name, "acc0") as cap, lab.client() as client:
        outcome = dial_and_wait(client, timeout_s=60)
        frames = list(cap.frames)
    assert (outcome.up, outcome.failed) == (20, 0)
    rows = json.loads(run_cli(lab.name, "sessions", "--output", "json").output)
    assert len(rows) == 20
    assert len({r["ip"] for r in rows}) == 20
    assert {r["state"] for r in rows} == {"active"}
    assert {r["dp"] for r in rows} == {"dp-site1-1", "dp-site1-2"}
    assert {r["auth"] for r in rows} == {"pap", "chap"}
    one = run_cli(lab.name, "sessions", "--match", "user=user00001@", "--output", "csv")
    assert len(one.output.strip().splitlines()) == 2  # header + one row
    table = run_cli(lab.name, "sessions", "--dp", "dp-site1-1").output
    assert "dp-site1-2" not in table and "dp-site1-1" in table
    _assert_dissects(frames)


def _assert_dissects(frames: list[bytes]) -> None:
    """scapy sees every protocol of the dial on the real link (what tcpdump would show)."""
    from scapy.layers.l2 import Ether
    from scapy.layers.ppp import PPP, PPPoED

    codes = {0x09: "PADI", 0x07: "PADO", 0x19: "PADR", 0x65: "PADS", 0xA7: "PADT"}
    protocols = {0xC021: "LCP", 0xC023: "PAP", 0xC223: "CHAP", 0x8021: "IPCP"}
    seen: set[str] = set()
    for raw in frames:
        pkt = Ether(raw)
        if pkt.haslayer(PPPoED):
            seen.add(codes.get(pkt[PPPoED].code, "?"))
        if pkt.haslayer(PPP):
            seen.add(protocols.get(pkt[PPP].proto, "other"))
    assert {"PADI", "PADO", "PADR", "PADS", "LCP", "PAP", "CHAP", "IPCP"} <= seen, seen


def test_tcpdump_on_a_lab_link_shows_session_traffic(lab: RunningLab, tmp_path) -> None:  # type: ignore[no-untyped-def]
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        pytest.skip("tcpdump is not installed (make test installs it)")
    (dp,) = [n for n in lab.state.nodes if n.name == "dp-site1-1"]
    pcap = tmp_path / "acc0.pcap"
    from pyroute2 import netns as pr_netns

    proc = subprocess.Popen(
        [tcpdump, "-i", "acc0", "-U", "-w", str(pcap), "-c", "20", "pppoes"],
        preexec_fn=lambda: pr_netns.setns(dp.netns, flags=0),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: pcap.exists() and pcap.stat().st_size > 0, what="tcpdump to start")
        with lab.client() as client:
            run_traffic(client, 1.0, 20, 200)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait()
    from scapy.layers.inet import UDP
    from scapy.layers.ppp import PPPoE
    from scapy.utils import rdpcap

    packets = rdpcap(str(pcap))
    assert len(packets) == 20
    assert all(p.haslayer(PPPoE) and p.haslayer(UDP) for p in packets)


def test_traffic_both_ways_without_loss(lab: RunningLab) -> None:
    with lab.client() as client:
        rows = {r["direction"]: r for r in traffic_rows(run_traffic(client, 2.0, 25, 256))}
    for direction in ("upstream", "downstream"):
        row = rows[direction]
        assert row["flows"] == 20
        assert row["sent"] == 20 * 50
        assert row["received"] == row["sent"], row
        assert row["lost"] == 0 and row["reordered"] == 0
        assert 0 < row["latency_avg_ms"] < 200


def test_usage_reaches_sessions_and_interim_accounting(lab: RunningLab) -> None:
    def counted() -> bool:
        rows = json.loads(run_cli(lab.name, "sessions", "--output", "json").output)
        return all(r["rx_bytes"] > 0 and r["tx_bytes"] > 0 for r in rows)

    wait_for(counted, timeout=15, what="usage reports on every session")
    wait_for(
        lambda: json.loads(
            run_cli(lab.name, "accounting", "--type", "interim", "-o", "json").output
        ),
        timeout=15,
        what="interim records",
    )
    records = json.loads(run_cli(lab.name, "accounting", "-o", "json").output)
    starts = [r for r in records if r["type"] == "start"]
    assert len({r["acct_session_id"] for r in starts}) == len(starts) >= 20


def test_stats_cover_cp_and_every_dp(lab: RunningLab) -> None:
    rows = json.loads(run_cli(lab.name, "stats", "--output", "json").output)
    assert counters(rows, "cp-a", "discovery_rx", "code=padi") >= 20
    assert counters(rows, "cp-a", "discovery_tx", "code=pads") >= 20
    assert counters(rows, "cp-a", "auth_ok") >= 20
    assert counters(rows, "cp-a", "ipcp_up") >= 20
    assert counters(rows, "dp-site1-1", "forwarded_up") > 0
    assert counters(rows, "dp-site1-2", "forwarded_down") > 0
    assert counters(rows, "dp-site1-1", "punted") > 0
    assert counters(rows, "dp-site1-3", "forwarded_up") == 0  # standby
    assert {r["node"] for r in rows} == {"cp-a", "dp-site1-1", "dp-site1-2", "dp-site1-3"}


def test_metrics_endpoints_pass_promtool(lab: RunningLab) -> None:
    status = json.loads(run_cli(lab.name, "lab", "status", "-o", "json").output)
    urls = [n["metrics"] for n in status["nodes"] if n["metrics"]]
    assert len(urls) == 7  # router, the cp pair, 3 dps, emulator
    promtool = shutil.which("promtool")
    bodies = {}
    for url in urls:
        with urllib.request.urlopen(url, timeout=5) as reply:
            bodies[url] = reply.read()
        if promtool:
            check = subprocess.run(
                [promtool, "check", "metrics"], input=bodies[url], capture_output=True
            )
            assert check.returncode == 0, (url, check.stdout, check.stderr)
    cp_text = next(b for u, b in bodies.items() if "cp" in u or b"vnf_cp_" in b).decode()
    assert 'vnf_cp_sessions{node="cp-a",state="active"} 20.0' in cp_text
    assert "vnf_cp_session_setup_seconds_bucket" in cp_text
    assert any(b"vnf_dp_forwarded_up_total" in b for b in bodies.values())
    if not promtool:
        pytest.skip("promtool missing: metrics fetched but not checked (make test installs it)")


def test_terminate_a_user_is_seen_by_the_client_and_accounted(lab: RunningLab) -> None:
    user = "user00003@site1"
    with lab.client() as client:
        emu = client.nodes("emulator")[0]
        before = client.emulator(emu).GetStatus(common_pb2.Empty(), timeout=5).terminated_by_peer
        result = run_cli(lab.name, "session", "terminate", "--user", user)
        assert result.exit_code == 0 and "terminating 1" in result.output
        wait_for(
            lambda: (
                client.emulator(emu).GetStatus(common_pb2.Empty(), timeout=5).terminated_by_peer
                == before + 1
            ),
            what="the client to see the termination",
        )
    records = wait_for(
        lambda: [
            r
            for r in json.loads(
                run_cli(lab.name, "accounting", "--user", user, "-o", "json").output
            )
            if r["type"] == "stop"
        ],
        what="the stop record",
    )
    (stop,) = records
    assert stop["cause"] == "admin-reset"
    assert stop["in_octets"] > 0 and stop["out_octets"] > 0
    gone = run_cli(lab.name, "sessions", "--match", f"user={user}", "-o", "json")
    assert json.loads(gone.output) == []


def test_cli_errors_are_one_line(lab: RunningLab) -> None:
    one_line_error(run_cli(lab.name, "session", "terminate", "--user", "nobody"))
    one_line_error(run_cli(lab.name, "session", "terminate", "--ip", "not-an-ip"))
    one_line_error(run_cli(lab.name, "sessions", "--match", "user=("))
    one_line_error(run_cli(lab.name, "subscribers", "remove", "no-such-user"))
    one_line_error(
        run_cli(lab.name, "subscribers", "add", "x", "--secret", "y", "--rate-profile", "gold")
    )
    one_line_error(run_cli("no-such-lab", "sessions"))


def test_subscribers_add_list_remove(lab: RunningLab) -> None:
    added = run_cli(
        lab.name, "subscribers", "add", "alice@test", "--secret", "s3cret", "--auth", "chap"
    )
    assert added.exit_code == 0
    listed = json.loads(
        run_cli(lab.name, "subscribers", "list", "--match", "alice", "-o", "json").output
    )
    assert listed == [{"username": "alice@test", "auth": "chap", "rate_profile": "default"}]
    assert run_cli(lab.name, "subscribers", "remove", "alice@test").exit_code == 0
    assert (
        json.loads(
            run_cli(lab.name, "subscribers", "list", "--match", "alice", "-o", "json").output
        )
        == []
    )


def test_attach_lets_a_foreign_client_dial_in(lab: RunningLab) -> None:
    """A client in a namespace of our choosing, on a veth from `vnf lab attach`, gets a session
    (and a wrong password gets refused) through the same CP and DPs."""
    import time

    from vnf.emulator.client import Connected, Disconnected, SubscriberClient
    from vnf.engines.ppp_session import AuthMethod

    target = f"vnftest-att-{os.getpid()}"
    result = run_cli(lab.name, "lab", "attach", "site1", "--netns", target, "--ifname", "pppoe0")
    assert result.exit_code == 0, result.output
    run_cli(lab.name, "subscribers", "add", "guest@test", "--secret", "guest-pw", "--auth", "pap")
    sock = in_netns(target, lambda: open_packet_socket("pppoe0"))
    try:
        for password, expect in (("wrong", Disconnected), ("guest-pw", Connected)):
            client = SubscriberClient(
                b"\x02\x99\x00\x00\x00\x01",
                "guest@test",
                password,
                (AuthMethod.PAP,),
                magic=0x1234,
                random_bytes=os.urandom,
            )
            client.start(time.monotonic())
            event = None
            end = time.monotonic() + 15
            while event is None and time.monotonic() < end:
                for frame in client.frames_to_send():
                    sock.send(frame)
                # Wait for a frame, or for the client's next timer, whichever comes first.
                deadline = client.get_timer()
                wait = 0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic()))
                readable, _, _ = select.select([sock], [], [], wait)
                if readable:
                    frame = sock.recv(2048)
                    if frame[:6] == b"\x02\x99\x00\x00\x00\x01":
                        client.receive(frame, time.monotonic())
                deadline = client.get_timer()
                if deadline is not None and deadline <= time.monotonic():
                    client.handle_timer(time.monotonic())
                while (e := client.next_event()) is not None:
                    if isinstance(e, Connected | Disconnected):
                        event = e
            assert isinstance(event, expect), event
        rows = json.loads(
            run_cli(lab.name, "sessions", "--match", "user=guest@", "-o", "json").output
        )
        assert len(rows) == 1
        stats = json.loads(run_cli(lab.name, "stats", "-o", "json").output)
        assert counters(stats, "cp-a", "auth_fail", "reason=bad_password") >= 1
        client.hangup(time.monotonic())
        for frame in client.frames_to_send():
            sock.send(frame)
    finally:
        sock.close()
