#!/usr/bin/env bash
# Refresh the lock of tested versions (scripts/locked.txt), deliberately:
#
#   scripts/lock.sh            resolve the newest versions pyproject.toml allows into a
#                              fresh virtual environment, run the default test suite there,
#                              and only if it passes write every installed version (the
#                              transitive ones too) to scripts/locked.txt
#   scripts/lock.sh --no-test  write the lock without running the tests (not for commits)
#
# The new lock is a change like any other: review `git diff scripts/locked.txt`, commit it
# with the test result. scripts/install.sh installs exactly what the lock says.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/scripts/locked.txt"
run_tests=1
[[ "${1:-}" == "--no-test" ]] && run_tests=0
say() { printf '[lock] %s\n' "$*"; }

venv="$(mktemp -d "${TMPDIR:-/tmp}/paretune-lock-XXXXXX")"
trap 'rm -rf "$venv"' EXIT
say "resolving the newest allowed versions into $venv"
PARETUNE_VENV="$venv" PARETUNE_LOCK=none bash "$root/scripts/install.sh" --dev

if [[ $run_tests == 1 ]]; then
    say "running the default test suite against them"
    start=$(date +%s)
    (cd "$root" && "$venv/bin/python" -m pytest -q -p no:cacheprovider) \
        || { say "tests failed: the lock is unchanged"; exit 1; }
    tested="tests passed $(date -u +%Y-%m-%d) in $(( $(date +%s) - start )) s"
else
    tested="NOT TESTED (written with --no-test on $(date -u +%Y-%m-%d))"
fi

pyv=$("$venv/bin/python" -c 'import platform, sys; print("%d.%d.%d %s %s" % (*sys.version_info[:3], platform.system().lower(), platform.machine()))')
tmp="$out.new"
{
    echo "# The tested set: every package scripts/install.sh installs, at the version the"
    echo "# test suite passed with. Written by scripts/lock.sh; do not edit by hand."
    echo "# python: $pyv"
    echo "# tested: $tested"
    # The project itself and pip are not locked; torch without its local build tag, so the
    # same line admits the CPU build (+cpu) and the CUDA build of the same release.
    "$venv/bin/python" -m pip freeze --all --disable-pip-version-check 2>/dev/null \
        | grep -v -e '^-e ' -e '^#' -e '^pip==' -e '^paretune' \
        | sed -e 's/^\(torch==[^+]*\)+.*/\1/' | LC_ALL=C sort -f
} >"$tmp"
mv "$tmp" "$out"
say "wrote ${out#$root/}: $(grep -vc '^#' "$out") packages; $tested"
