"""The lab's subscribers and cable modems: one definition used both to provision the CP's
store and to build the emulator's clients, so the two always agree on names, secrets, MACs
and methods."""

from __future__ import annotations

from dataclasses import dataclass

from vnf.lab.plan import MacKind, make_mac


@dataclass(frozen=True, slots=True)
class LabSubscriber:
    number: int
    mac: bytes
    username: str
    password: str
    auth: str  # "chap" or "pap"


def lab_subscribers(
    count: int,
    chap_share: float,
    username: str,
    password: str,
    site: str,
    lab_index: int,
    site_index: int,
) -> list[LabSubscriber]:
    """Subscribers 1..count; the first round(count * chap_share) use CHAP-MD5, the rest PAP."""
    chap = round(count * chap_share)
    return [
        LabSubscriber(
            number=n,
            mac=make_mac(MacKind.CLIENT, lab_index, site_index, n),
            username=username.format(n=n, site=site),
            password=password.format(n=n, site=site),
            auth="chap" if n <= chap else "pap",
        )
        for n in range(1, count + 1)
    ]


@dataclass(frozen=True, slots=True)
class LabModem:
    number: int
    mac: bytes  # the cable modem's
    cpe_mac: bytes  # the one CPE behind it


def lab_modems(count: int, lab_index: int, site_index: int) -> list[LabModem]:
    """Cable modems 1..count of a site, each with its CPE."""
    return [
        LabModem(
            number=n,
            mac=make_mac(MacKind.MODEM, lab_index, site_index, n),
            cpe_mac=make_mac(MacKind.CPE, lab_index, site_index, n),
        )
        for n in range(1, count + 1)
    ]
