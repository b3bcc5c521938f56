# SPDX-License-Identifier: GPL-2.0-or-later
# Shared by packaging/build-deb and packaging/build-rpm (sourced, not executed).
#
# Both builds start from the same staged copy of the checkout so that the .deb and the .rpm
# always contain the same files, and neither touches the work tree outside build/ and dist/.

# Repository root: the parent of packaging/.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIST="$ROOT/dist"
BUILD="$ROOT/build"

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

need() {  # need COMMAND APT-PACKAGE: fail early with the package to install, not a confusing error later
    command -v "$1" >/dev/null 2>&1 || die "'$1' not found: apt-get install -y $2"
}

# The one version source: __version__ in lib/hamail/__init__.py (read as text, so building needs no import).
hamail_version() {
    local v
    v="$(sed -n 's/^__version__ *= *["'\'']\([^"'\'']*\)["'\''].*/\1/p' "$ROOT/lib/hamail/__init__.py")"
    [[ "$v" =~ ^[0-9][0-9A-Za-z.+~]*$ ]] || die "cannot read __version__ from lib/hamail/__init__.py (got '$v')"
    printf '%s\n' "$v"
}

# Reproducible timestamps: the last commit's time (same commit -> same bytes); honour a caller's value.
source_date_epoch() {
    if [[ -n "${SOURCE_DATE_EPOCH:-}" ]]; then
        printf '%s\n' "$SOURCE_DATE_EPOCH"
    elif git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
        git -C "$ROOT" log -1 --format=%ct
    else
        echo 0
    fi
}

# Who answers for the packages: the Maintainer of debian/control, the one place it is written (the
# generated debian/changelog and the rpm's Packager are taken from it).
hamail_maintainer() {
    local m
    m="$(sed -n 's/^Maintainer: *//p' "$ROOT/packaging/debian/control")"
    [[ "$m" == *" <"*@*">" ]] || die "no 'Name <address>' Maintainer in packaging/debian/control (got '$m')"
    printf '%s\n' "$m"
}

# What the packages are made of, relative to the checkout: the hamail package's library (data files
# beside the modules too), agents, fence agents, admin commands (sbin/), DRBD handlers, and the hamail-vbmc
# package's two lab files (the rest of lab/ is not packaged); the man page generator, run at build
# time; the licence, which the rpm ships (%license).
STAGED_PATHS=(lib/hamail agents fence sbin drbd-handlers lab/hamail-vbmc lab/hamail_vbmc.py packaging/tools LICENSE)

# stage_tree DEST: copy STAGED_PATHS into DEST.
# In a git checkout the file list is what git tracks plus untracked files it does not ignore: new
# agents are packaged before they are committed, while __pycache__ and other ignored litter is not.
# Outside git (an unpacked tarball) everything below those paths except byte code is taken.
stage_tree() {
    local dest="$1"
    rm -rf "$dest"
    mkdir -p "$dest/lib" "$dest/agents" "$dest/fence" "$dest/sbin" "$dest/drbd-handlers" "$dest/lab"
    (
        cd "$ROOT"
        if git rev-parse --git-dir >/dev/null 2>&1; then
            git ls-files -z --cached --others --exclude-standard -- "${STAGED_PATHS[@]}"
        else
            find "${STAGED_PATHS[@]}" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0
        fi | while IFS= read -r -d '' f; do
            # Tracked files deleted in the work tree are skipped rather than failing the copy.
            [[ -f "$f" ]] && printf '%s\0' "$f"
        done | LC_ALL=C sort -z | tar --null -T - -cf - | tar -xf - -C "$dest"
    )
    [[ -f "$dest/lib/hamail/__init__.py" ]] || die "staging failed: no lib/hamail/__init__.py in $dest"
    [[ -f "$dest/lab/hamail-vbmc" && -f "$dest/lab/hamail_vbmc.py" ]] \
        || die "staging failed: no lab/hamail-vbmc or lab/hamail_vbmc.py in $dest"
    [[ -f "$dest/packaging/tools/hamail-manpages" && -f "$dest/LICENSE" ]] \
        || die "staging failed: no packaging/tools/hamail-manpages or LICENSE in $dest"
}
