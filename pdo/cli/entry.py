"""`python -m pdo.cli.entry`: run the CLI as a module (used to start child services)."""

from pdo.cli import app

if __name__ == "__main__":
    app()
