"""Executes every notebook in this folder headless, in place (outputs are stored), and exits
non-zero if any cell fails. Run by `.ci/run` in the venv made from `requirements.txt`:

    python notebooks/run_notebooks.py [NOTEBOOK ...]
"""

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).resolve().parent


def main(names: list[str]) -> int:
    books = [HERE / n for n in names] if names else sorted(HERE.glob("*.ipynb"))
    failed = []
    for path in books:
        book = nbformat.read(path, as_version=4)
        client = NotebookClient(book, timeout=600, kernel_name="python3", record_timing=False,
                                resources={"metadata": {"path": str(HERE)}})
        try:
            client.execute()
        except CellExecutionError as e:
            failed.append(path.name)
            print(f"FAILED {path.name}:\n{e}", file=sys.stderr)
            continue
        nbformat.write(book, path)
        print(f"ok {path.name}")
    print(f"notebooks: {len(books) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
