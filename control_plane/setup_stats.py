"""Session setup time as BNG Blaster reports it: first PADI seen → accounting start committed.

Pure bookkeeping; the adapter tells it when a start record was handed to the store and when
the store committed it.
"""

from __future__ import annotations

from array import array


class SetupStats:
    def __init__(self) -> None:
        self._pending: dict[str, float] = {}  # acct session id → first PADI (monotonic s)
        self.setup_s = array("d")
        self.established = array("d")
        self.first_padi = 0.0
        self.last_established = 0.0

    def started(self, acct_session_id: str, padi_mono: float) -> None:
        self._pending[acct_session_id] = padi_mono

    def committed(self, acct_session_id: str, committed_mono: float) -> float | None:
        """Record one committed start; returns its setup time in seconds (None if unknown)."""
        padi = self._pending.pop(acct_session_id, None)
        if padi is None:
            return None
        setup = max(0.0, committed_mono - padi)
        self.setup_s.append(setup)
        self.established.append(committed_mono)
        if not self.first_padi or padi < self.first_padi:
            self.first_padi = padi
        self.last_established = max(self.last_established, committed_mono)
        return setup

    def __len__(self) -> int:
        return len(self.setup_s)
