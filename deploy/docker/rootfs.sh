# Shell functions for building container images from this machine's own files, sourced by build-base.sh and
# build-fleet-images.sh: no container registry is reachable, so an image's root filesystem is assembled from
# installed binaries and the shared libraries they load, then `docker import`ed.

# The absolute paths of the shared libraries a binary loads, per ldd (none for a static binary).
libs_of() { ldd "$1" 2>/dev/null | grep -o '/[^ ]*' || true; }

# Copies a file (dereferenced) to the same path under a rootfs, unless it is there already.
copy_into() {
  local root=$1 file=$2
  [ -e "$root$file" ] && return 0
  mkdir -p "$root$(dirname "$file")"
  cp -L "$file" "$root$file"
}

# Copies a file and every shared library it needs to the same paths under a rootfs.
copy_with_libs() {
  local root=$1 file=$2 lib
  copy_into "$root" "$file"
  for lib in $(libs_of "$file"); do copy_into "$root" "$lib"; done
}

# An empty rootfs with the merged-/usr layout of Debian 12 (so paths that ldd prints under /lib and /lib64 resolve
# inside the image), a world-writable /tmp, and /etc/passwd and /etc/group with root and one unprivileged user.
# Usage: make_skeleton <root> <user> <uid>
make_skeleton() {
  local root=$1 user=$2 uid=$3
  mkdir -p "$root"/usr/bin "$root"/usr/lib "$root"/usr/lib64 "$root"/etc "$root"/tmp "$root/home/$user"
  ln -s usr/bin "$root/bin"
  ln -s usr/lib "$root/lib"
  ln -s usr/lib64 "$root/lib64"
  chmod 1777 "$root/tmp"
  chown "$uid:$uid" "$root/home/$user"
  printf 'root:x:0:0:root:/root:/usr/sbin/nologin\n%s:x:%s:%s:%s:/home/%s:/usr/sbin/nologin\n' "$user" "$uid" "$uid" "$user" "$user" >"$root/etc/passwd"
  printf 'root:x:0:\n%s:x:%s:\n' "$user" "$uid" >"$root/etc/group"
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
}

# Imports a rootfs as an image. Usage: import_rootfs <root> <tag> <message> [--change ...]...
# A rebuild (same tag) removes the image the tag named before, which would otherwise be left dangling.
import_rootfs() {
  local root=$1 tag=$2 message=$3 old
  shift 3
  old=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
  tar -C "$root" --numeric-owner -c . | docker import "$@" --message "$message" - "$tag" >/dev/null
  [ -z "$old" ] || docker image rm "$old" >/dev/null 2>&1 || true
  echo "built $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }
