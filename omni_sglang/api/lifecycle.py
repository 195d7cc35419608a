"""Graceful shutdown. On SIGTERM (or Ctrl-C) the server first says it is going away:
``/v1/health/ready`` turns 503 and new generation requests get 503, for
``drain_notice_seconds`` so load balancers can stop routing here; then uvicorn stops
accepting and gives in-flight requests ``drain_timeout_seconds`` before aborting them.
A second signal skips the notice."""

from __future__ import annotations

import logging
import threading
from types import FrameType

import uvicorn

from omni_sglang.state import ServerState

logger = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, state: ServerState):
        super().__init__(config)
        self._state = state

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not uvicorn's handle_exit: it records the signal and re-raises it after the
        # shutdown, so the process would die of SIGTERM; a drained server exits 0.
        if self._state.draining:
            self.force_exit = True
            return
        self._state.start_draining()
        notice = self._state.config.drain_notice_seconds
        logger.info(
            "signal %s: readiness is 503 now; closing in %.1f s, then %.0f s for in-flight "
            "requests",
            sig,
            notice,
            self._state.config.drain_timeout_seconds,
        )
        timer = threading.Timer(notice, self._stop)
        timer.daemon = True
        timer.start()

    def _stop(self) -> None:
        self.should_exit = True
