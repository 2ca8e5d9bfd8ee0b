#!/usr/bin/env bash
# Sourced by the project's scripts (scripts/, jmeter/, kind/): what each of them needs.
#
#   repo_root      the repository's root folder
#   script_name    how messages name the script: `setup`, `jmeter/run`, `deploy` …
#   say TEXT       a progress line on stderr, `NAME: TEXT` (stdout stays for results)
#   die TEXT       `NAME: error: TEXT` on stderr, then exit $die_status (1 unless the script
#                  sets it; 2 for scripts whose 1 means something else)
#   usage          prints the script's opening comment (line 2 to the first line that is not
#                  a comment), for --help
#
# Usage, at the top of a script in scripts/ or jmeter/:
#   . "$(dirname -- "${BASH_SOURCE[0]}")/../scripts/lib.sh"

# The script being run: the outermost file (kind/common.sh sources this for kind/deploy …),
# as an absolute path, since scripts change folder later.
lib_caller=${BASH_SOURCE[${#BASH_SOURCE[@]} - 1]}
lib_caller=$(cd -- "$(dirname -- "$lib_caller")" && pwd)/${lib_caller##*/}
repo_root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
case "$lib_caller" in
    "$repo_root"/scripts/*) script_name=${lib_caller##*/} ;;
    "$repo_root"/*) script_name=${lib_caller#"$repo_root"/} ;;
    *) script_name=${lib_caller##*/} ;;
esac
die_status=1

say() { echo "$script_name: $*" >&2; }
die() {
    echo "$script_name: error: $*" >&2
    exit "$die_status"
}
usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$lib_caller"; }
