"""Cable modems as the provisioning store knows them (the embedded analogue of a CM config
file, DOCSIS MULPI §9.1): which modem may register, and with which service class.

A service class is a rate profile (``vnf.model.subscriber.RateProfile``) by name: upstream
and downstream Maximum Sustained Traffic Rate and Maximum Traffic Burst, shared with PPPoE
subscribers' profiles.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProvisionedModem:
    mac: bytes
    service_class: str = "default"
    enabled: bool = True  # False: the modem registers, its CPE gets no service (TLV 3 = 0)
