"""`pdo gen`: a deterministic city of departmental source files with documented, realistic dirt."""

from pdo.gen.driver import generate
from pdo.gen.report import GenerationReport

__all__ = ["GenerationReport", "generate"]
