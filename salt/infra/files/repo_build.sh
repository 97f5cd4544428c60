#!/bin/bash
# Build Pigsty's local package repository (deployed by Salt: Pigsty on Salt).
#
#   pigsty-repo-build LIST REPO_DIR CACHE_DIR
#
# Downloads every package named in LIST with its whole dependency closure, resolved as for
# a bare node (apt sees an empty dpkg status), into CACHE_DIR (kept between builds), then
# publishes a flat repository in REPO_DIR (the .debs, Packages, Packages.gz) for
#   deb [trusted=yes] http://META/pigsty ./
# The stamp REPO_DIR/.pigsty-packages (a copy of LIST) is written last: an interrupted build
# leaves no stamp, so the next run builds again.
set -euo pipefail
LIST=$1 ; REPO=$2 ; CACHE=$3
[ -s "$LIST" ] || { echo "pigsty-repo-build: $LIST is empty or missing" >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive
STATE=$(mktemp -d /tmp/pigsty-repo.XXXXXX)
trap 'rm -rf "$STATE"' EXIT
: > "$STATE/status"
mkdir -p "$CACHE/partial" "$(dirname "$REPO")"
mapfile -t PKGS < <(grep -v '^\s*\(#\|$\)' "$LIST")
# (no binary cache: apt's pkgcache.bin holds this machine's real status)
APT_OPTS=(-o Dir::State::status="$STATE/status" -o Dir::Cache::archives="$CACHE"
          -o Dir::Cache::pkgcache="" -o Dir::Cache::srcpkgcache=""
          -o APT::Install-Recommends=false -o APT::Install-Suggests=false)
apt-get -qq update
apt-get install -y -qq --download-only "${APT_OPTS[@]}" "${PKGS[@]}" >/dev/null
# the closure itself: "Inst NAME (VERSION SUITE [ARCH])" lines of a simulated install
apt-get install -s "${APT_OPTS[@]}" "${PKGS[@]}" \
  | sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) [^[]*\[\([^]]*\)\]).*$/\1 \2 \3/p' > "$STATE/closure"
[ -s "$STATE/closure" ] || { echo "pigsty-repo-build: apt resolved no packages" >&2; exit 1; }
# publish exactly the closure (debs of an older list stay in the cache, not in the repository)
NEW=$(mktemp -d "$REPO.new.XXXXXX")
while read -r name version arch; do
  deb="$CACHE/${name}_${version//:/%3a}_${arch}.deb"
  [ -f "$deb" ] || { echo "pigsty-repo-build: $deb was not downloaded" >&2; rm -rf "$NEW"; exit 1; }
  ln "$deb" "$NEW/" 2>/dev/null || cp "$deb" "$NEW/"
done < "$STATE/closure"
(cd "$NEW" && dpkg-scanpackages . /dev/null > Packages 2>/dev/null && gzip -9nc Packages > Packages.gz)
chmod 0755 "$NEW"
# self-check: a bare node with only this repository as its source installs the list
mkdir -p "$STATE/lists/partial"
echo "deb [trusted=yes] file:$NEW ./" > "$STATE/sources.list"
CHECK_OPTS=(-o Dir::State::status="$STATE/status" -o Dir::State::Lists="$STATE/lists" -o APT::Sandbox::User=root
            -o Dir::Etc::SourceList="$STATE/sources.list" -o Dir::Etc::SourceParts=/nonexistent
            -o Dir::Cache::pkgcache="" -o Dir::Cache::srcpkgcache=""
            -o APT::Install-Recommends=false -o APT::Install-Suggests=false)
apt-get -qq "${CHECK_OPTS[@]}" update
if ! apt-get install -s "${CHECK_OPTS[@]}" "${PKGS[@]}" > "$STATE/check" 2>&1; then
  echo "pigsty-repo-build: the new repository does not install the list:" >&2
  tail -20 "$STATE/check" >&2
  rm -rf "$NEW"; exit 1
fi
rm -rf "$REPO.old"
if [ -d "$REPO" ]; then mv "$REPO" "$REPO.old"; fi
mv "$NEW" "$REPO"
rm -rf "$REPO.old"
cp "$LIST" "$REPO/.pigsty-packages"
echo "pigsty-repo-build: $(wc -l < "$STATE/closure") packages in $REPO"
