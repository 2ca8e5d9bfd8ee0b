#!/usr/bin/env bash
# Shared by the kind/ scripts (sourced): scripts/lib.sh (root, messages), pinned versions and
# the prerequisite check that names every missing tool at once.

# shellcheck source=scripts/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/../scripts/lib.sh"
# shellcheck source=kind/versions.env
. "$repo_root/kind/versions.env"

# require TOOL... : fails naming every missing tool and where to get it.
require() {
    local missing=()
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        die "missing ${missing[*]}: install docker (https://docs.docker.com/engine/install/), then kind, kubectl, faas-cli with arkade (https://github.com/alexellis/arkade: arkade get kind kubectl faas-cli)"
    fi
    if [[ " $* " == *" docker "* ]] && ! docker info >/dev/null 2>&1; then
        die "docker is installed but its engine does not answer (is the daemon running, may this user use it?)"
    fi
}

gateway_password() {
    kubectl -n openfaas get secret basic-auth -o jsonpath='{.data.basic-auth-password}' | base64 --decode
}
