"""Produce ``transparency_dev.json`` from the transparency-dev/merkle test vectors.

Source: https://github.com/transparency-dev/merkle (Apache-2.0), folders
``testdata/inclusion/`` and ``testdata/consistency/`` (written by that repo's
``cmd/proofgen``). Only the data is taken: every JSON file in those folders,
its fields kept verbatim (hashes stay base64, as there), plus its path. Also
the hex constants of ``testonly/constants.go`` (``LeafInputs``,
``NodeHashes``, ``RootHashes``): the 8-leaf tree the happy-path vectors use.

Run once, by hand, against a local clone (a bare one works)::

    python tests/golden/merkle/import_transparency_dev.py /path/to/merkle.git [commit]

Never regenerate it to make a test pass.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = "transparency-dev/merkle"
FOLDERS = ("testdata/inclusion", "testdata/consistency")
CONSTANTS = "testonly/constants.go"
FOLDERS_KEYS = ("inclusion", "consistency")
OUT = Path(__file__).with_name("transparency_dev.json")


def git(git_dir: str, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", git_dir, *args], check=True, capture_output=True, text=True
    ).stdout


def go_hex_strings(source: str, func: str) -> list[str]:
    """The ``hd("...")`` literals in Go function ``func``, in order."""
    body = source.split(f"func {func}()", 1)[1].split("\n}\n", 1)[0]
    return re.findall(r'hd\("([0-9a-f]*)"\)', body)


def main(git_dir: str, rev: str = "HEAD") -> None:
    commit = git(git_dir, "rev-parse", rev).strip()
    out: dict[str, Any] = {
        "source": {
            "repo": f"https://github.com/{REPO}",
            "commit": commit,
            "paths": [f"{folder}/" for folder in FOLDERS],
            "license": "Apache-2.0",
            "note": "Data only, fields verbatim (hashes base64); 'file' is the source path. "
            "Produced by tests/golden/merkle/import_transparency_dev.py.",
        },
    }
    for folder in FOLDERS:
        names = git(git_dir, "ls-tree", "-r", "--name-only", commit, folder + "/").split()
        vectors = []
        for name in sorted(n for n in names if n.endswith(".json")):
            vector = json.loads(git(git_dir, "show", f"{commit}:{name}"))
            vectors.append({"file": name, **vector})
        out[folder.rsplit("/", 1)[1]] = vectors
    constants = git(git_dir, "show", f"{commit}:{CONSTANTS}")
    levels = constants.split("func NodeHashes()", 1)[1].split("\n}\n", 1)[0].split("}, {")
    out["tree"] = {
        "file": CONSTANTS,
        "leaf_inputs": go_hex_strings(constants, "LeafInputs"),
        "node_hashes": [re.findall(r'hd\("([0-9a-f]*)"\)', level) for level in levels],
        "root_hashes_from_size_1": go_hex_strings(constants, "RootHashes"),
    }
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{OUT}: " + ", ".join(f"{k} {len(v)}" for k, v in out.items() if k in FOLDERS_KEYS))


if __name__ == "__main__":
    main(*sys.argv[1:])
