"""The README's recipe for nginx/cluster.conf, run as written (bash, envsubst) for two replicas, and the
result checked by a real `nginx -t`: a recipe with one placeholder per replica left `server  max_fails=2`
for every replica not given, which nginx refuses."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.app.server_process import ROOT, free_port
from tests.conftest import require
from tests.nginx.test_nginx import main_config, nginx_binary

REPLICAS = "10.0.0.11:8080 10.0.0.12:8080 10.0.0.13:8080"
OUT = "/etc/nginx/conf.d/cutout.conf && nginx -t && nginx -s reload"


def readme_recipe() -> str:
    lines = (ROOT / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith('CUTOUT_REPLICAS="$('))
    end = next(i for i in range(start, len(lines)) if OUT in lines[i])
    return "\n".join(line.strip() for line in lines[start:end + 1])


def test_the_readme_renders_cluster_conf_for_two_replicas_and_nginx_accepts_it(tmp_path: Path) -> None:
    binary = nginx_binary()
    require(shutil.which("envsubst") is not None, "envsubst not installed (Debian package gettext-base)")
    recipe = readme_recipe()
    assert REPLICAS in recipe and "CUTOUT_LISTEN=80" in recipe and OUT in recipe, recipe
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    recipe = (recipe.replace(REPLICAS, "127.0.0.1:18081 127.0.0.1:18082")
              .replace("CUTOUT_LISTEN=80", f"CUTOUT_LISTEN=127.0.0.1:{free_port()}")
              .replace("/var/cache/nginx/cutout", str(prefix / "cache"))
              .replace(OUT, str(prefix / "cutout.conf")))
    done = subprocess.run(["bash", "-euc", recipe], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    conf = (prefix / "cutout.conf").read_text()
    assert conf.count("server 127.0.0.1:1808") == 2 and "${" not in conf
    (prefix / "nginx.conf").write_text(main_config(prefix))
    check = subprocess.run([binary, "-t", "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
