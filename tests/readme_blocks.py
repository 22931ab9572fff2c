"""The README's fenced blocks, for tests that run its commands as written."""

import re
import shlex
import subprocess
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def readme_block(after: str, starts: str) -> str:
    """The first fenced block after the text ``after`` (a heading) whose text starts with ``starts``."""
    tail = README[README.index(after):]
    return next(b for b in re.findall(r"^```[a-z]*\n(.*?)^```", tail, flags=re.S | re.M) if b.startswith(starts))


def make_certificates(folder: Path) -> dict:
    """Run the README's openssl commands in ``folder``: a certificate authority and a certificate
    it signed; the cluster section's ``tls`` mapping for them."""
    folder.mkdir(parents=True)
    for line in readme_block("### Past one machine", "umask 077").splitlines():
        if line.startswith("openssl "):
            subprocess.run(shlex.split(line), cwd=folder, check=True, capture_output=True, timeout=120)
    return {"ca_file": str(folder / "ca.pem"), "cert": str(folder / "cert.pem"), "key": str(folder / "key.pem")}
