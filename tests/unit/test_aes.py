"""hamail.agents.fence_ipmi.aes: AES-CBC through libcrypto gives exactly what cryptography gives, and refuses what it cannot do."""

import os

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from hamail.agents.fence_ipmi.aes import CbcCipher, open_libcrypto

# NIST SP 800-38A F.2.1 (CBC-AES128) and F.2.5 (CBC-AES256): all four blocks.
IV = "000102030405060708090a0b0c0d0e0f"
PLAIN = ("6bc1bee22e409f96e93d7e117393172a" "ae2d8a571e03ac9c9eb76fac45af8e51"
         "30c81c46a35ce411e5fbc1191a0a52ef" "f69f2445df4f9b17ad2b417be66c3710")
VECTORS = {
    "2b7e151628aed2a6abf7158809cf4f3c":
        "7649abac8119b246cee98e9b12e9197d" "5086cb9b507219ee95db113a917678b2"
        "73bed6b8e3c1743b7116e69e22229516" "3ff1caa1681fac09120eca307586e1a7",
    "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4":
        "f58c4c04d6e5f1ba779eabfb5f7bfbd6" "9cfc4e967edb808d679f777bc6702c7d"
        "39f23369a9d9bacfa530e26304231461" "b2eb05e2c39be9fcda6c19078c6a9d1b",
}


@pytest.fixture(scope="module")
def cipher():
    libcrypto = open_libcrypto()
    assert libcrypto is not None, "libcrypto.so.3 should load and pass its self-test on Debian 12"
    return CbcCipher(libcrypto)


@pytest.mark.parametrize("key", sorted(VECTORS))
def test_nist_vectors_both_ways(cipher, key):
    operation = cipher(algorithm=algorithms.AES(bytes.fromhex(key)), mode=modes.CBC(bytes.fromhex(IV)),
                       backend=None)
    encryptor = operation.encryptor()
    # Fed in uneven pieces: update() returns whole blocks as they complete.
    plain = bytes.fromhex(PLAIN)
    assert (encryptor.update(plain[:5]) + encryptor.update(plain[5:40]) + encryptor.update(plain[40:])
            + encryptor.finalize()).hex() == VECTORS[key]
    decryptor = operation.decryptor()
    assert (decryptor.update(bytes.fromhex(VECTORS[key])) + decryptor.finalize()).hex() == PLAIN


def test_same_as_cryptography_for_every_key_size_and_length(cipher):
    for n in range(60):
        key, iv = os.urandom((16, 24, 32)[n % 3]), os.urandom(16)
        data = os.urandom(16 * (n % 9))
        ours = cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        theirs = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        encrypted = ours.update(data) + ours.finalize()
        assert encrypted == theirs.update(data) + theirs.finalize()
        back = cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        assert back.update(bytearray(encrypted)) + back.finalize() == data


def test_partial_block_is_an_error_like_cryptography(cipher):
    encryptor = cipher(algorithms.AES(b"k" * 16), modes.CBC(b"i" * 16)).encryptor()
    encryptor.update(b"seventeen bytes!!")
    with pytest.raises(ValueError, match="multiple of the block length"):
        encryptor.finalize()
    with pytest.raises(ValueError, match="finalized"):
        encryptor.update(b"x" * 16)


def test_only_aes_cbc(cipher):
    with pytest.raises(ValueError, match="only AES-CBC"):
        cipher(algorithms.AES(b"k" * 16), modes.ECB())
    with pytest.raises(ValueError, match="only AES-CBC"):
        cipher(algorithms.Camellia(b"k" * 16), modes.CBC(b"i" * 16))


def test_no_usable_library_means_none():
    assert open_libcrypto(("libdoes-not-exist.so.9",)) is None
    assert open_libcrypto(("libc.so.6",)) is None  # loads, but has no EVP calls


FAKE_SESSION = """
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives.ciphers import Cipher as AnotherName

BACKEND = default_backend()


class Session:
    _crypto_backend = BACKEND
"""

PROBE = """
import sys
sys.path[:0] = [{fake!r}, {lib!r}]
sys.path.append('/usr/lib/python3/dist-packages')
from hamail.agents.fence_ipmi.agent import import_pyghmi_session
session = import_pyghmi_session()
print(session.BACKEND is not None, sys.modules['pyghmi.ipmi.private.session'] is session,
      sys.modules['pyghmi.ipmi.private'].session is session)
"""


def test_a_pyghmi_of_another_shape_is_imported_as_it_is(tmp_path):
    """Where pyghmi's session module does not use cryptography through a module-level Cipher, nothing is
    replaced and the module is imported again with the real default_backend."""
    import pathlib
    import subprocess
    private = tmp_path / "pyghmi" / "ipmi" / "private"
    private.mkdir(parents=True)
    for package in (tmp_path / "pyghmi", tmp_path / "pyghmi" / "ipmi", private):
        (package / "__init__.py").write_text("")
    (private / "session.py").write_text(FAKE_SESSION)
    lib = str(pathlib.Path(__file__).resolve().parents[2] / "lib")
    result = subprocess.run(["/usr/bin/python3", "-S", "-c", PROBE.format(fake=str(tmp_path), lib=lib)],
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["True", "True", "True"], result.stderr
