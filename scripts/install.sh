#!/usr/bin/env bash
# Install paretune into ./.venv (or $PARETUNE_VENV), idempotently.
#
#   scripts/install.sh          runtime dependencies
#   scripts/install.sh --dev    plus the test dependencies (pytest, scikit-learn, moto)
#
# Every package, transitive ones included, is installed at the version in the lock
# (scripts/locked.txt: the set the test suite last passed with), so a fresh machine gets
# what was tested, whatever is newest on the registry that day. PARETUNE_LOCK=FILE names
# another lock; PARETUNE_LOCK=none installs by pyproject.toml's ranges alone (what
# scripts/lock.sh does to find the newest versions before it runs the tests).
#
# torchsort 0.1.10 ships as source only and compiles against the torch it finds.
# This script builds it against the pinned torch, and builds the CUDA kernels only
# when an NVIDIA GPU *and* nvcc are present; otherwise nvcc is hidden from the build
# (a CUDA build on a machine without a GPU fails). It says which one it built.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${PARETUNE_VENV:-$root/.venv}"
extra=""
[[ "${1:-}" == "--dev" ]] && extra="[dev]"
stamp="$venv/.paretune-installed${extra:+-dev}"
py="${PYTHON:-python3}"
lock="${PARETUNE_LOCK:-$root/scripts/locked.txt}"

say() { printf '[install] %s\n' "$*"; }

if [[ "$lock" != none && ! -f "$lock" ]]; then
    say "error: lock file $lock not found (PARETUNE_LOCK=none installs by pyproject.toml's ranges)" >&2
    exit 2
fi
if [[ -f "$stamp" && "$stamp" -nt "$root/pyproject.toml" \
      && ( "$lock" == none || "$stamp" -nt "$lock" ) \
      && "$(cat "$stamp")" == "$lock" ]]; then
    say "up to date ($venv${extra:+, with dev extras}; lock: ${lock#$root/})"
    exit 0
fi

start=$(date +%s)
if [[ ! -x "$venv/bin/python" ]]; then
    say "creating virtual environment $venv"
    "$py" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
# Some machines' pip config lists local index folders that do not exist; pip warns about
# each one per package. Drop just those lines so real errors stay visible.
quiet_pip() { "${pip[@]}" "$@" 2> >(grep -v "^WARNING: Location '.*' is ignored" >&2); }

torch_pin=$(sed -n 's/^ *"\(torch==[^"]*\)".*/\1/p' "$root/pyproject.toml" | head -n1)
torchsort_pin=$(sed -n 's/^ *"\(torchsort==[^"]*\)".*/\1/p' "$root/pyproject.toml" | head -n1)

# Constraints: the lock (every package's tested version) plus the torch pin, so no
# dependency can pull another torch build.
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
echo "$torch_pin" >"$constraints"
if [[ "$lock" == none ]]; then
    say "no lock: installing the newest versions pyproject.toml allows"
else
    pyv=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    lockpy=$(sed -n 's/^# python: *\([0-9.]*\).*/\1/p' "$lock" | head -n1)
    say "using lock ${lock#$root/} ($(sed -n 's/^# tested: *//p' "$lock" | head -n1))"
    if [[ -n "$lockpy" && "$lockpy" != "$pyv" ]]; then
        say "warning: the lock was tested on Python $lockpy, this is Python $pyv" >&2
    fi
    grep -v '^torch==' "$lock" >>"$constraints"
fi

say "installing $torch_pin and build tools"
quiet_pip install -c "$constraints" "$torch_pin" "setuptools>=64" wheel

if ! "$venv/bin/python" -c 'import torchsort' 2>/dev/null; then
    gpu=0
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then gpu=1; fi
    if [[ $gpu == 1 ]] && command -v nvcc >/dev/null 2>&1 \
        && "$venv/bin/python" -c 'import torch, sys; sys.exit(0 if torch.version.cuda else 1)'; then
        if [[ -z "${TORCH_CUDA_ARCH_LIST:-}" ]]; then
            TORCH_CUDA_ARCH_LIST=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | sort -u | paste -sd';')
            export TORCH_CUDA_ARCH_LIST
        fi
        export CUDA_HOME="${CUDA_HOME:-$(dirname "$(dirname "$(command -v nvcc)")")}"
        say "building $torchsort_pin with CUDA kernels (arch $TORCH_CUDA_ARCH_LIST, CUDA_HOME=$CUDA_HOME)"
        quiet_pip install -c "$constraints" --no-build-isolation --no-binary torchsort "$torchsort_pin"
    else
        # Hide nvcc: drop every PATH entry that holds it, and any CUDA_HOME.
        clean_path=""
        IFS=':' read -ra parts <<<"$PATH"
        for p in "${parts[@]}"; do
            [[ -n "$p" && ! -x "$p/nvcc" ]] && clean_path="${clean_path:+$clean_path:}$p"
        done
        why="no NVIDIA GPU found"
        [[ $gpu == 1 ]] && why="GPU found but no nvcc or no CUDA build of torch"
        say "building $torchsort_pin for CPU only ($why)"
        (unset CUDA_HOME CUDA_PATH; export PATH="$venv/bin:$clean_path"
         quiet_pip install -c "$constraints" --no-build-isolation --no-binary torchsort "$torchsort_pin")
    fi
fi

say "installing paretune${extra} (editable) and its dependencies"
quiet_pip install -c "$constraints" -e "$root$extra"

"$venv/bin/python" - <<'PY'
import torch, torchsort
x = torch.tensor([[0.3, 0.1, 0.2]])
r = torchsort.soft_rank(x, regularization_strength=1e-3)
assert torch.allclose(r, torch.tensor([[3.0, 1.0, 2.0]]), atol=1e-2), r
cuda = torch.cuda.is_available()
if cuda:
    r = torchsort.soft_rank(x.cuda(), regularization_strength=1e-3)
print(f"[install] torch {torch.__version__}, torchsort works on {'CPU and CUDA' if cuda else 'CPU'}")
PY
echo "$lock" >"$stamp"
say "done in $(( $(date +%s) - start )) s"
