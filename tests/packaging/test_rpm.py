"""The .rpms built by packaging/build-rpm (rpmbuild on this Debian machine) have the right layout and dependencies.

build-rpm makes hamail (library, OCF agents, fence agents) and its subpackage hamail-vbmc (the lab's
virtual BMC, which the product must neither ship nor depend on).
"""

import hashlib
import subprocess

from packaging_helpers import (OCF_DIR, PRODUCT, ROOT, VBMC, VBMC_MODULE, VBMC_PROGRAM, build, checkout_files,
                               expected_executables, is_vbmc_path, library_files, vbmc_executables, version)


def rpm_query(rpm_file, *args):
    """Lines printed by `rpm -qp ARGS FILE`, which must succeed."""
    proc = subprocess.run(["rpm", "-qp", *args, str(rpm_file)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def requires(rpm_file):
    """Names the rpm requires, without versions."""
    return {line.split()[0] for line in rpm_query(rpm_file, "--requires")}


def sitelib(rpm_file):
    """The site-packages directory the hamail rpm installs the library into."""
    return next(p for p in rpm_query(rpm_file, "-l") if p.endswith("-packages/hamail")).rsplit("/", 1)[0]


def test_rpm_lists_agents_library_and_fence_agents(rpm):
    listed = set(rpm_query(rpm, "-l"))
    sitelib = [p for p in listed if p.endswith("-packages/hamail")]
    assert len(sitelib) == 1 and sitelib[0].startswith("/usr/lib/python3"), sitelib
    expected = {f"{sitelib[0]}/{name}" for name in library_files()}
    expected |= {path for path, _ in expected_executables()}
    assert expected - listed == set()
    assert checkout_files("agents") and checkout_files("fence"), "no agents in the checkout?"


def test_rpm_agents_are_executable(rpm):
    # --dump: path size mtime digest mode owner group ...
    modes = {fields[0]: int(fields[4], 8) for fields in map(str.split, rpm_query(rpm, "--dump"))}
    for name in checkout_files("agents"):
        assert modes[f"{OCF_DIR}/{name}"] & 0o777 == 0o755, name
    for name in checkout_files("fence"):
        assert modes[f"/usr/sbin/{name}"] & 0o777 == 0o755, name


def test_rpm_metadata(rpm):
    assert {"python3", "python3-pyghmi", "python3-PyMySQL", "python3-lxml"} <= requires(rpm)
    assert "pacemaker" in rpm_query(rpm, "--recommends")
    assert rpm_query(rpm, "--qf", "%{VERSION} %{ARCH}") == [f"{version()} noarch"]


def test_product_rpm_has_no_simulator_and_no_python_daemon(rpm):
    listed = rpm_query(rpm, "-l")
    assert not [p for p in listed if is_vbmc_path(p)], listed
    assert not [p for p in listed if p.startswith("/usr/bin")], listed
    assert not requires(rpm) & {"python3-daemon", VBMC}
    assert "vbmc" not in "\n".join(rpm_query(rpm, "--qf", "%{SUMMARY}\n%{DESCRIPTION}")).lower()


def test_vbmc_rpm_ships_the_program_and_its_module(rpm, vbmc_rpm):
    listed = set(rpm_query(vbmc_rpm, "-l"))
    assert {path for path, _ in vbmc_executables()} | {f"{sitelib(rpm)}/{VBMC_MODULE}"} <= listed, listed
    assert not [p for p in listed if p.startswith(f"{sitelib(rpm)}/hamail/") or "hamail_lab" in p], listed
    modes = {fields[0]: int(fields[4], 8) for fields in map(str.split, rpm_query(vbmc_rpm, "--dump"))}
    assert modes[VBMC_PROGRAM] & 0o777 == 0o755


def test_vbmc_rpm_metadata(vbmc_rpm):
    assert {PRODUCT, "python3-daemon"} <= requires(vbmc_rpm)
    assert f"{PRODUCT} = {version()}-1" in rpm_query(vbmc_rpm, "--requires")
    assert rpm_query(vbmc_rpm, "--qf", "%{NAME} %{VERSION} %{ARCH}") == [f"{VBMC} {version()} noarch"]
    assert rpm_query(vbmc_rpm, "--qf", "%{SUMMARY}") == [
        "virtual IPMI BMC for hamail labs and tests, not for production nodes"]


def test_rpm_build_is_deterministic(rpms):
    first = {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in rpms.items()}
    assert {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in build("build-rpm").items()} == first


def rpm_payload(rpm_file):
    """{path: bytes} of the regular files in the rpm (rpm2cpio's newc archive, parsed here: no cpio needed)."""
    data = subprocess.run(["rpm2cpio", str(rpm_file)], capture_output=True, check=True, timeout=60).stdout
    files, offset = {}, 0
    while True:
        header = data[offset:offset + 110]
        assert header[:6] == b"070701", "not a newc cpio archive"
        mode, size, namesize = (int(header[6 + 8 * i:14 + 8 * i], 16) for i in (1, 6, 11))
        name = data[offset + 110:offset + 110 + namesize - 1].decode()
        offset = (offset + 110 + namesize + 3) & ~3  # name padded to 4 bytes
        if name == "TRAILER!!!":
            return files
        if mode & 0o170000 == 0o100000:
            files[name.lstrip(".")] = data[offset:offset + size]
        offset = (offset + size + 3) & ~3


def test_rpm_ships_the_checkout_with_the_rpm_site_packages(rpm, vbmc_rpm):
    # Agents run with `python3 -S` add Debian's dist-packages by hand; the spec rewrites that to the RPM
    # system's site-packages, where the library is. Everything else is shipped as it is in the checkout.
    site = sitelib(rpm)
    payload = rpm_payload(rpm)
    rewritten = {f"{OCF_DIR}/{n}": ROOT / "agents" / n for n in checkout_files("agents")}
    rewritten |= {f"/usr/sbin/{n}": ROOT / "fence" / n for n in checkout_files("fence")}
    for path, source in rewritten.items():
        text = source.read_bytes()
        assert payload[path] == text.replace(b"/usr/lib/python3/dist-packages", site.encode()), path
        if b"dist-packages" in text:
            assert payload[path] != text, f"{path}: dist-packages not rewritten"
    for name in library_files():
        assert payload[f"{site}/hamail/{name}"] == (ROOT / "lib" / "hamail" / name).read_bytes(), name
    for path, content in payload.items():
        if not path.startswith("/usr/lib/python"):
            assert b"/usr/lib/python3/dist-packages" not in content, path
    vbmc = rpm_payload(vbmc_rpm)
    assert vbmc[VBMC_PROGRAM] == (ROOT / "lab" / "hamail-vbmc").read_bytes().replace(
        b"/usr/lib/python3/dist-packages", site.encode())
    assert vbmc[f"{site}/{VBMC_MODULE}"] == (ROOT / "lab" / VBMC_MODULE).read_bytes()
