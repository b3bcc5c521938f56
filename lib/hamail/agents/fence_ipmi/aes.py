"""AES-CBC from the libcrypto that Python's hashlib already loaded, called through ctypes: pyghmi's RMCP+ cipher.

Why not cryptography: pyghmi's session module calls cryptography's default_backend() when it is imported,
and that backend imports cryptography's X.509, serialization and asymmetric code: about 60 ms of a fence_ipmi
status call that is otherwise ~50 ms (cryptography 38 in Debian 12; 36 ms with cryptography 50). RMCP+ needs
one primitive from it, AES-CBC without padding (IPMI 2.0 section 13.29, pyghmi pads itself), which is three
EVP calls into the same OpenSSL. `open_libcrypto()` returns None when that library cannot be loaded or fails
its known-answer test; callers then use cryptography as usual.
"""

from __future__ import annotations

import ctypes

__all__ = ["LibCrypto", "CbcCipher", "CbcContext", "open_libcrypto"]

# OpenSSL 3 (Debian 12, RHEL 9) and 1.1 (RHEL 8): the same EVP calls in both.
SONAMES = ("libcrypto.so.3", "libcrypto.so.1.1")
BLOCK = 16

# NIST SP 800-38A, F.2.1 CBC-AES128.Encrypt, first block: the binding must reproduce it before it is used.
_KAT_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
_KAT_IV = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
_KAT_PLAIN = bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")
_KAT_CIPHER = bytes.fromhex("7649abac8119b246cee98e9b12e9197d")


class LibCrypto:
    """The EVP cipher calls of one loaded libcrypto, with their C signatures declared for ctypes."""

    __slots__ = ("_lib", "_ciphers")

    def __init__(self, lib: ctypes.CDLL) -> None:
        c_void_p, c_int, c_char_p = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
        int_p = ctypes.POINTER(c_int)
        # Pointers must be declared: ctypes' default int return type would truncate them on 64-bit.
        lib.EVP_CIPHER_CTX_new.restype = c_void_p
        lib.EVP_CIPHER_CTX_new.argtypes = []
        lib.EVP_CIPHER_CTX_free.restype = None
        lib.EVP_CIPHER_CTX_free.argtypes = [c_void_p]
        lib.EVP_CipherInit_ex.restype = c_int
        lib.EVP_CipherInit_ex.argtypes = [c_void_p, c_void_p, c_void_p, c_char_p, c_char_p, c_int]
        lib.EVP_CIPHER_CTX_set_padding.restype = c_int
        lib.EVP_CIPHER_CTX_set_padding.argtypes = [c_void_p, c_int]
        lib.EVP_CipherUpdate.restype = c_int
        lib.EVP_CipherUpdate.argtypes = [c_void_p, c_void_p, int_p, c_char_p, c_int]
        lib.EVP_CipherFinal_ex.restype = c_int
        lib.EVP_CipherFinal_ex.argtypes = [c_void_p, c_void_p, int_p]
        ciphers = {}
        for bits in (128, 192, 256):
            function = getattr(lib, f"EVP_aes_{bits}_cbc")
            function.restype = c_void_p
            function.argtypes = []
            ciphers[bits // 8] = function
        self._lib = lib
        self._ciphers = ciphers

    def cbc(self, key: bytes, iv: bytes, encrypt: bool) -> CbcContext:
        """A new AES-CBC context without padding for this key (16, 24 or 32 bytes) and 16-byte IV."""
        if len(key) not in self._ciphers:
            raise ValueError(f"invalid AES key size ({len(key) * 8} bits)")
        if len(iv) != BLOCK:
            raise ValueError(f"invalid IV size ({len(iv)}) for CBC")
        return CbcContext(self._lib, self._ciphers[len(key)](), bytes(key), bytes(iv), encrypt)

    def self_test(self) -> bool:
        """Whether this binding reproduces the NIST CBC-AES128 vector both ways."""
        try:
            enc = self.cbc(_KAT_KEY, _KAT_IV, True)
            dec = self.cbc(_KAT_KEY, _KAT_IV, False)
            return (enc.update(_KAT_PLAIN) + enc.finalize() == _KAT_CIPHER
                    and dec.update(_KAT_CIPHER) + dec.finalize() == _KAT_PLAIN)
        except (OSError, ValueError):
            return False


class CbcContext:
    """One encryption or decryption, fed by update() and closed by finalize() (cryptography's CipherContext)."""

    __slots__ = ("_lib", "_ctx")

    def __init__(self, lib: ctypes.CDLL, cipher: int, key: bytes, iv: bytes, encrypt: bool) -> None:
        self._lib = lib
        self._ctx = lib.EVP_CIPHER_CTX_new()
        if not self._ctx:
            raise MemoryError("EVP_CIPHER_CTX_new failed")
        if not (lib.EVP_CipherInit_ex(self._ctx, cipher, None, key, iv, 1 if encrypt else 0)
                and lib.EVP_CIPHER_CTX_set_padding(self._ctx, 0)):
            self._free()
            raise ValueError("EVP_CipherInit_ex failed")

    def update(self, data: bytes) -> bytes:
        """Process more data; returns the whole blocks done so far."""
        if not self._ctx:
            raise ValueError("context already finalized")
        data = bytes(data)
        out = ctypes.create_string_buffer(len(data) + BLOCK)
        written = ctypes.c_int(0)
        if not self._lib.EVP_CipherUpdate(self._ctx, out, ctypes.byref(written), data, len(data)):
            self._free()
            raise ValueError("EVP_CipherUpdate failed")
        return out.raw[:written.value]

    def finalize(self) -> bytes:
        """End the operation; ValueError if the data was not a whole number of blocks (no padding here)."""
        if not self._ctx:
            raise ValueError("context already finalized")
        out = ctypes.create_string_buffer(BLOCK)
        written = ctypes.c_int(0)
        try:
            if not self._lib.EVP_CipherFinal_ex(self._ctx, out, ctypes.byref(written)):
                raise ValueError("The length of the provided data is not a multiple of the block length.")
            return out.raw[:written.value]
        finally:
            self._free()

    def _free(self) -> None:
        if self._ctx:
            self._lib.EVP_CIPHER_CTX_free(self._ctx)
            self._ctx = None

    def __del__(self) -> None:
        self._free()


class CbcCipher:
    """Stands in for cryptography's Cipher class where only AES-CBC is used: Cipher(algorithm, mode, backend)."""

    __slots__ = ("_libcrypto",)

    def __init__(self, libcrypto: LibCrypto) -> None:
        self._libcrypto = libcrypto

    def __call__(self, algorithm, mode, backend=None) -> _CbcOperation:
        """Like Cipher(algorithms.AES(key), modes.CBC(iv)); anything but AES-CBC is refused."""
        if getattr(algorithm, "name", None) != "AES" or getattr(mode, "name", None) != "CBC":
            raise ValueError(f"only AES-CBC is available here, not {getattr(algorithm, 'name', algorithm)}-"
                             f"{getattr(mode, 'name', mode)}")
        return _CbcOperation(self._libcrypto, algorithm.key, mode.initialization_vector)


class _CbcOperation:
    """A configured AES-CBC cipher: encryptor() and decryptor() as cryptography's Cipher has them."""

    __slots__ = ("_libcrypto", "_key", "_iv")

    def __init__(self, libcrypto: LibCrypto, key: bytes, iv: bytes) -> None:
        self._libcrypto, self._key, self._iv = libcrypto, key, iv

    def encryptor(self) -> CbcContext:
        """An encryption context."""
        return self._libcrypto.cbc(self._key, self._iv, True)

    def decryptor(self) -> CbcContext:
        """A decryption context."""
        return self._libcrypto.cbc(self._key, self._iv, False)


def open_libcrypto(sonames: tuple[str, ...] = SONAMES) -> LibCrypto | None:
    """The first of these libraries that loads, has the EVP calls and passes the known-answer test; else None."""
    for soname in sonames:
        try:
            libcrypto = LibCrypto(ctypes.CDLL(soname))
        except (OSError, AttributeError):
            continue
        if libcrypto.self_test():
            return libcrypto
    return None
