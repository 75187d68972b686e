"""Writes the generated reference pages into the site (run by mkdocs-gen-files at build time)."""

import sys
from pathlib import Path

import mkdocs_gen_files

sys.path.insert(0, str(Path(__file__).parent))

from reference import PAGES  # noqa: E402

for path, page in PAGES.items():
    with mkdocs_gen_files.open(path, "w") as f:
        f.write(page() + "\n")
    mkdocs_gen_files.set_edit_path(path, "gen/reference.py")
