"""Where the repository and its sample data are, for tests that read files."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_POOL = ROOT / "deploy" / "pools" / "region-12.csv"
