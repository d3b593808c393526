"""A local Ray starts with token authentication on and without Ray's opt-out warning."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def test_local_ray_keeps_token_auth_and_prints_no_warning(tmp_path):
    script = textwrap.dedent("""
        import os
        from synthgen.build.executor import ray_session
        with ray_session(num_cpus=1) as ray:
            assert ray.get(ray.put(7)) == 7
        print("mode", os.environ.get("RAY_AUTH_MODE"))
    """)
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    env["HOME"] = str(tmp_path)  # no token yet: Ray generates one
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr
    assert "mode token" in done.stdout
    assert "Token authentication" not in done.stderr, done.stderr
    assert (tmp_path / ".ray" / "auth_token").is_file()  # authentication really is on
