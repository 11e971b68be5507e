#!/usr/bin/env bash
# Mutation testing of prunelab's core with mutmut 3 ([tool.mutmut] in pyproject.toml; pip install -e ".[mutation]").
#
#   bash benchmarks/mutation.sh                                    # every configured core file
#   bash benchmarks/mutation.sh 'prunelab.modules.*'               # a subset: mutant-name globs
#   bash benchmarks/mutation.sh 'prunelab.speech.metrics.*' 'prunelab.models.saved.*'   # (re-runs every match)
#   ONLY="prunelab/modules.py prunelab/speech/metrics.py" bash benchmarks/mutation.sh   # pending mutants of these
#
# Runs in a scratch copy of the tree (tracked + untracked, not ignored files; $MUTATION_DIR, default
# /tmp/prunelab-mutation), so the working tree never gets a mutants/ folder and the code under test does not
# change while it runs. In the copy, method registrations become calls instead of decorators
# (benchmarks/mutation_prepare.py): mutmut 3 does not mutate decorated functions. The copy keeps mutmut's
# results: a second run only re-tests mutants of functions that changed (or the globs given). Fast tests only
# (see pytest_add_cli_args* in pyproject.toml), one thread per test process, JOBS test processes at once
# (default 2), at nice 10 (NICE) on a shared machine. Afterwards: cd "$MUTATION_DIR" && python -m mutmut browse
# (or python -m mutmut show NAME) to read a mutant. mutmut keeps a verdict until the mutated function changes;
# after adding tests, RERUN_SURVIVORS=1 tests the surviving mutants again. Not part of CI: the whole core takes hours on 2 shared
# cores (TESTING.md has the figures).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${MUTATION_DIR:-/tmp/prunelab-mutation}"
JOBS="${JOBS:-2}"

python -c "import mutmut" 2>/dev/null || { echo 'mutmut is not installed: pip install -e ".[mutation]"' >&2; exit 2; }

mkdir -p "$DIR"
# refresh the copy (keeping mutants/, mutmut's state): tar keeps modification times, so unchanged files stay unchanged
find "$DIR" -mindepth 1 -maxdepth 1 ! -name mutants -exec rm -rf {} +
(cd "$ROOT" && git ls-files -co --exclude-standard -z | tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$DIR"
python "$ROOT/benchmarks/mutation_prepare.py" "$DIR"  # @register_method -> a call, so mutmut mutates the methods too
if [ -n "${ONLY:-}" ]; then  # e.g. ONLY="prunelab/modules.py prunelab/speech/metrics.py": mutate just these files
  python - "$DIR/pyproject.toml" $ONLY <<'PY'
import re, sys
path, files = sys.argv[1], sys.argv[2:]
text = open(path).read()
text = re.sub(r"only_mutate = \[[^\]]*\]", "only_mutate = [" + ", ".join(f'"{f}"' for f in files) + "]", text)
open(path, "w").write(text)
PY
fi
if [ "${RERUN_SURVIVORS:-0}" = 1 ]; then  # tests changed since the last run: survivors get tested again
  python "$ROOT/benchmarks/mutation_prepare.py" --reset-survivors "$DIR"
fi

cd "$DIR"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
start=$(date +%s)
nice -n "${NICE:-10}" python -m mutmut run --max-children "$JOBS" "$@"
end=$(date +%s)
echo
echo "mutation run took $(( (end - start) / 60 )) min $(( (end - start) % 60 )) s (JOBS=$JOBS) in $DIR"
echo "surviving mutants (python -m mutmut show NAME for the diff):"
python -m mutmut results
