"""Plant known bugs one at a time in a scratch copy of the repository and check that fast tests catch each.

    python benchmarks/planted_bugs.py              # every bug, the fast tests of the default files
    python benchmarks/planted_bugs.py --bug lost-bias-clustered tests/test_compress.py

The working tree is never touched: tracked and untracked (not ignored) files are copied to a temporary
folder, one bug is planted there by an exact text replacement (it fails loudly when the code it patches has
moved), and ``pytest -m "not slow and not browser"`` runs there with that copy first on ``sys.path``.
Prints, per bug, the tests that failed; exits 1 when a bug is caught by none. See TESTING.md.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BUGS = {
    # ClusteredLinear.from_groups forgets the centroids' bias: the layer keeps nn.Parameter zeros.
    "lost-bias-clustered": ("prunelab/modules.py",
                            "            if groups.bias is not None:\n                layer.bias.copy_(groups.bias)\n",
                            ""),
    # the unstructured path keeps nn.Linear's random initial bias instead of the layer's own.
    "random-bias-unstructured": ("prunelab/modules.py",
                                 "            if result.bias is not None:\n                dense.bias.copy_(result.bias)\n",
                                 ""),
    # save_compressed forgets the generation config (languages, tasks, max_length).
    "no-generation-config": ("prunelab/models/saved.py",
                             "            model.model.generation_config.save_pretrained(tmp)\n",
                             "            pass\n"),
    # a trimmed vocabulary's removed tokens get logit 0 instead of -inf: generation can pick them.
    "vocabulary-removed-logit-zero": ("prunelab/vocabulary.py", 'float("-inf")', "0.0"),
    # a token that is a fragment of a multi-byte character is kept by every script.
    "vocabulary-fragments-kept": ("prunelab/compression/vocabulary.py",
                                  "            except UnicodeDecodeError:  # a fragment of a multi-byte character: "
                                  "spelled by single bytes instead\n                continue\n",
                                  "            except UnicodeDecodeError:\n                keep.append(i)\n"
                                  "                continue\n"),
    # layers compressed side by side: the worker threads keep the caller's torch thread count (session 6).
    "workers-not-one-thread": ("prunelab/compression/parallel.py", "    torch.set_num_threads(1)\n    keep_buffers()\n",
                               "    keep_buffers()\n"),
    # the k-means work buffers ignore their name: the Gram matrix and the cost/scores buffer are one (session 6).
    "workspace-one-buffer": ("prunelab/kmeans/workspace.py", "    held = buffers.get(name)\n",
                             "    name = \"shared\"\n    held = buffers.get(name)\n"),
    # compress_ installs each new layer as soon as it is built, while a later layer still reads the original
    # (k_proj's importance reads q_proj, and comes after it) (session 7).
    "inplace-too-early": ("prunelab/compression/compress.py",
                          "for n in waiting if last_reader.get(n, -1) <= i]:", "for n in waiting]:"),
    # the small Gram matrices run on the caller's threads: a layer's bits depend on what runs beside it (session 7).
    "small-gram-caller-threads": ("prunelab/kmeans/gram.py",
                                  "    if X.device.type == \"cpu\" and N <= SMALL_GRAM_MAX_N:\n",
                                  "    if False:\n"),
}

DEFAULT_TESTS = ["tests/test_compress.py", "tests/test_methods_clustering.py", "tests/test_methods_registry.py",
                 "tests/test_cli.py", "tests/test_sensitivity.py", "tests/test_plots.py", "tests/test_models.py",
                 "tests/test_vocabulary.py", "tests/test_parallel_layers.py", "tests/kmeans/test_kmeans_workspace.py",
                 "tests/test_compress_inplace.py", "tests/kmeans/test_kmeans_gram_threads.py"]


def copy_tree(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def plant(tree: Path, bug: str) -> None:
    path, old, new = BUGS[bug]
    text = (tree / path).read_text()
    if text.count(old) != 1:
        raise SystemExit(f"{bug}: the code to patch is not (exactly once) in {path}; update BUGS")
    (tree / path).write_text(text.replace(old, new))


def run_tests(tree: Path, tests: list[str]) -> tuple[list[str], int, float]:
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider",
                           "-m", "not slow and not browser", *tests], cwd=tree, env=env, capture_output=True,
                          text=True)
    failed = re.findall(r"^FAILED (\S+)", proc.stdout, flags=re.M)
    return failed, proc.returncode, time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bug", action="append", choices=list(BUGS), help="only this bug (repeatable)")
    p.add_argument("tests", nargs="*", default=DEFAULT_TESTS)
    args = p.parse_args()
    uncaught = []
    for bug in args.bug or list(BUGS):
        with tempfile.TemporaryDirectory(prefix=f"planted-{bug}-") as tmp:
            tree = Path(tmp)
            copy_tree(tree)
            plant(tree, bug)
            check = subprocess.run([sys.executable, "-c", "import prunelab; print(prunelab.__file__)"], cwd=tree,
                                   env=dict(os.environ, PYTHONPATH=str(tree)), capture_output=True, text=True)
            assert check.stdout.startswith(str(tree)), f"the copy is not the one imported: {check.stdout}"
            failed, rc, seconds = run_tests(tree, args.tests)
        print(f"{bug}: {len(failed)} failed in {seconds:.0f} s (pytest exit {rc})")
        for test in failed:
            print(f"    {test}")
        if not failed:
            uncaught.append(bug)
    if uncaught:
        print(f"NOT CAUGHT: {', '.join(uncaught)}")
    return 1 if uncaught else 0


if __name__ == "__main__":
    sys.exit(main())
