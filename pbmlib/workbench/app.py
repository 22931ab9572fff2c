"""``pbm app``: the explorer notebook served by Voila, with a bounded number of kernels.

Voila starts one kernel (about 150 MB) per page load. :func:`voila_command` serves with
:class:`CappedKernelManager`: at most ``max_kernels`` kernels at once (a page beyond that
is answered 503 with a sentence saying why), and kernels idle for ``cull_idle_seconds``
are shut down, also when their page is still open (a forgotten tab), checked every
``cull_interval_seconds``. A kernel busy with a training is never culled.
"""

from __future__ import annotations

import sys
from pathlib import Path

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado import web
from traitlets import Integer

__all__ = ["CappedKernelManager", "voila_command", "MAX_KERNELS", "CULL_IDLE_SECONDS", "CULL_INTERVAL_SECONDS"]

#: Kernels (open pages) served at once: 20 take about 3 GB.
MAX_KERNELS = 20
#: A kernel without activity (no widget moved, nothing run) for this long is shut down.
CULL_IDLE_SECONDS = 900
#: How often idle kernels are looked for.
CULL_INTERVAL_SECONDS = 60


class CappedKernelManager(AsyncMappingKernelManager):
    """jupyter_server's kernel manager with a limit on the number of kernels running at once.

    When the limit is reached, idle kernels are culled first (``cull_idle_timeout``); if
    none is idle, the page is refused with HTTP 503 and a sentence that says why.
    """

    max_kernels = Integer(MAX_KERNELS, config=True, help="The most kernels (open pages) served at once.")

    async def start_kernel(self, *, kernel_id=None, path=None, **kwargs):
        if (kernel_id is None or kernel_id not in self) and len(self.list_kernel_ids()) >= self.max_kernels:
            if self.cull_idle_timeout > 0:
                await self.cull_kernels()
            if len(self.list_kernel_ids()) >= self.max_kernels:
                self.log.warning("refused a page: %d kernels running, the limit", self.max_kernels)
                raise web.HTTPError(503, reason=f"The app already serves {self.max_kernels} pages, its limit; close "
                                                f"an idle tab or try again in a few minutes")
        return await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)


def voila_command(notebook: str | Path, *, port: int, ip: str = "127.0.0.1", browser: bool = False,
                  max_kernels: int = MAX_KERNELS, cull_idle_seconds: int = CULL_IDLE_SECONDS,
                  cull_interval_seconds: int = CULL_INTERVAL_SECONDS) -> list[str]:
    """The command line that serves ``notebook`` with Voila, kernels capped and culled.

    Parameters
    ----------
    notebook : path of an ``.ipynb``
    port, ip : where to listen (127.0.0.1: this machine only).
    browser : bool
        Open a browser tab.
    max_kernels : int
        The most kernels (open pages) at once.
    cull_idle_seconds, cull_interval_seconds : int
        Shut down kernels idle this long (open pages included), looking this often.
    """
    for name, value in (("max_kernels", max_kernels), ("cull_idle_seconds", cull_idle_seconds),
                        ("cull_interval_seconds", cull_interval_seconds), ("port", port)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number of 1 or more, got {value!r}")
    return [sys.executable, "-m", "voila", str(notebook), f"--port={port}", f"--Voila.ip={ip}",
            f"--VoilaConfiguration.multi_kernel_manager_class={__name__}.CappedKernelManager",
            f"--CappedKernelManager.max_kernels={max_kernels}",
            f"--MappingKernelManager.cull_idle_timeout={cull_idle_seconds}",
            f"--MappingKernelManager.cull_interval={cull_interval_seconds}",
            "--MappingKernelManager.cull_connected=True"] + ([] if browser else ["--no-browser"])
