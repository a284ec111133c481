"""`pdo api` and `pdo console`: start the bank API and the Streamlit console."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from pdo.cli.root import console, settings

ROOT = Path(__file__).resolve().parents[2]


def register(app: typer.Typer) -> None:
    """Attach `pdo api` and `pdo console`."""

    @app.command("api")
    def api_command(
        port: int = typer.Option(None, "--port"), host: str = typer.Option(None, "--host")
    ) -> None:
        """Serve the subscriber delivery API (FastAPI)."""
        import uvicorn

        from api.app import create_app

        s = settings()
        port = port or s.api_port
        host = host or s.api_host
        console.print(f"API: http://{host}:{port}/docs")
        # No access log: request paths name enterprises (a 个体工商户's code is personal data).
        uvicorn.run(create_app(s), host=host, port=port, log_level="warning", access_log=False)

    @app.command("console")
    def console_command(port: int = typer.Option(None, "--port")) -> None:
        """Serve the authority console (Streamlit)."""
        s = settings()
        port = port or s.console_port
        console.print(f"console: http://localhost:{port}")
        env = dict(os.environ, PDO_HOME=str(s.resolved_home))
        cmd = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "dashboard" / "app.py"),
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            "--client.toolbarMode",
            "minimal",
        ]
        os.execve(sys.executable, cmd, env)  # become streamlit, so signals reach it directly
