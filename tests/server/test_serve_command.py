"""``genesis3d serve`` without the server extra names the pip line."""

from __future__ import annotations

import subprocess
import sys


def test_serve_without_the_extra_names_the_install_line():
    code = (
        "import sys; sys.modules['fastapi'] = None\n"
        "from genesis3d.cli.main import main\n"
        "main(['serve'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 5, done.stderr
    assert "pip install 'genesis3d[server]'" in done.stderr
