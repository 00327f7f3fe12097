"""The cable modem provisioning directory: MAC → :class:`ProvisionedModem` (pure; the SQLite
store feeds it, as it feeds :class:`control_plane.aaa.local.SubscriberDirectory`)."""

from __future__ import annotations

from vnf.model.cable import ProvisionedModem


class ModemDirectory:
    def __init__(self) -> None:
        self._modems: dict[bytes, ProvisionedModem] = {}

    def __len__(self) -> int:
        return len(self._modems)

    def put(self, modem: ProvisionedModem) -> bool:
        """Add or replace; True if it was new."""
        new = modem.mac not in self._modems
        self._modems[modem.mac] = modem
        return new

    def remove(self, mac: bytes) -> bool:
        return self._modems.pop(mac, None) is not None

    def get(self, mac: bytes) -> ProvisionedModem | None:
        return self._modems.get(mac)

    def all(self) -> list[ProvisionedModem]:
        return list(self._modems.values())
