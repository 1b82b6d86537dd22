"""The declaration table against the C header and the library's exported symbols.

Parses include/msgrpriv.h (functions, callback typedefs, the options struct, enums, result
codes, version macros) and compares every item with the Python tables, then compares the
table with `nm -D` of the loaded library: Python cannot drift from C.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import shutil
import subprocess
from ctypes import POINTER, c_bool, c_char, c_char_p, c_int, c_int32, c_size_t, c_uint32, c_uint64, c_void_p
from typing import Any, Dict, List, Tuple

import pytest

import msgrpriv
from msgrpriv import _ffi, codes
from msgrpriv.enums import DispatchMode, LockStatus, SessionFlags, SessionState, Tls
from helpers import CARGO_TOML, HEADER

pytestmark = pytest.mark.skipif(not HEADER.is_file(), reason=f"{HEADER} not found (set MSGRPRIV_HEADER)")


@functools.lru_cache(maxsize=None)
def header_text() -> str:
    text = HEADER.read_text(encoding="utf-8")
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)  # block comments
    return re.sub(r"//[^\n]*", " ", text)


@functools.lru_cache(maxsize=None)
def raw_header() -> str:
    return HEADER.read_text(encoding="utf-8")


SCALARS: Dict[str, Any] = {
    "MSGR_HRESULT": c_int32,
    "int32_t": c_int32,
    "uint32_t": c_uint32,
    "uint64_t": c_uint64,
    "size_t": c_size_t,
    "bool": c_bool,
    "int": c_int,
    "SESSION_STATE": c_int,
    "LockStatus": c_int,
    "void *": c_void_p,
    "const char *": c_char_p,
    "char *": POINTER(c_char),
    "msgr_service *": _ffi.ServiceHandle,
    "msgr_client *": _ffi.ClientHandle,
    "msgr_session_manager *": _ffi.ManagerHandle,
    "msgr_session *": _ffi.SessionHandle,
    "const msgr_service_options *": POINTER(_ffi.ServiceOptions),
}


def ctype_of(c_type: str) -> Any:
    """The ctypes type the table must use for a C type string."""
    t = re.sub(r"\s+", " ", c_type.strip())
    t = re.sub(r"\s*\*", " *", t).replace("* *", "**")
    if t in SCALARS:
        return SCALARS[t]
    if t in _ffi.CALLBACK_TYPES:
        return _ffi.CALLBACK_TYPES[t]
    if t.endswith("**"):
        return POINTER(ctype_of(t[:-1].strip()))
    if t.endswith("*"):
        return POINTER(ctype_of(t[:-1].strip()))
    raise AssertionError(f"no ctypes mapping for C type {c_type!r}")


def split_params(params: str) -> List[str]:
    """Parameter types, names dropped; [] for (void)."""
    params = " ".join(params.split())
    if params in ("", "void"):
        return []
    out = []
    for p in params.split(","):
        m = re.match(r"^(.*?)(\w+)$", p.strip())
        assert m, p
        out.append(m.group(1).strip())
    return out


@functools.lru_cache(maxsize=None)
def header_functions() -> Dict[str, Tuple[str, List[str]]]:
    text = header_text()
    found = {}
    for m in re.finditer(r"MSGR_API\s+([\w\s\*]+?)\s*\b(msgr_\w+)\s*\(([^)]*)\)\s*;", text):
        ret, name, params = m.groups()
        found[name] = (" ".join(ret.split()), split_params(params))
    return found


@functools.lru_cache(maxsize=None)
def header_callbacks() -> Dict[str, Tuple[str, List[str]]]:
    text = header_text()
    found = {}
    for m in re.finditer(r"typedef\s+(\w+)\s*\(\s*\*\s*(msgr_\w+_callback)\s*\)\s*\(([^)]*)\)\s*;", text):
        ret, name, params = m.groups()
        found[name] = (ret, split_params(params))
    return found


def test_header_is_parsed() -> None:
    fns = header_functions()
    assert len(fns) >= 60
    assert "msgr_session_invite" in fns
    assert len(header_callbacks()) == 23


def test_every_header_function_is_declared_once() -> None:
    names = [name for name, _, _ in _ffi.FUNCTIONS]
    assert len(names) == len(set(names)), "a function is declared twice"
    assert sorted(names) == sorted(header_functions())


@pytest.mark.parametrize("name,argtypes,restype", _ffi.FUNCTIONS, ids=[f[0] for f in _ffi.FUNCTIONS])
def test_function_signature_matches_header(name: str, argtypes: Any, restype: Any) -> None:
    ret, params = header_functions()[name]
    assert restype is ctype_of(ret), f"{name}: result {ret}"
    assert len(argtypes) == len(params), f"{name}: {params}"
    for i, (py, c) in enumerate(zip(argtypes, params)):
        assert py is ctype_of(c), f"{name} parameter {i}: header says {c}, table says {py}"


def test_callback_types_match_header() -> None:
    hdr = header_callbacks()
    assert sorted(hdr) == sorted(_ffi.CALLBACK_TYPES)
    for name, (ret, params) in hdr.items():
        cb = _ffi.CALLBACK_TYPES[name]
        assert cb._restype_ is (None if ret == "void" else ctype_of(ret)), name
        assert list(cb._argtypes_) == [ctype_of(p) for p in params], name


def test_every_event_has_a_trampoline_and_a_registration_function() -> None:
    from msgrpriv import _callbacks

    fns = header_functions()
    registrations = {
        n for n in fns
        if re.match(r"msgr_session_manager_on_|msgr_session_on_|msgr_session_before_app_launch$", n)
    }
    assert len(registrations) == 19
    assert {e.c_function for e in msgrpriv.EVENTS.values()} == registrations
    assert set(_callbacks.TRAMPOLINES) == set(msgrpriv.EVENTS)
    for spec in msgrpriv.EVENTS.values():
        # the registration function takes exactly this event's callback type
        assert fns[spec.c_function][1][1] == spec.typedef


def test_options_struct_matches_header() -> None:
    m = re.search(r"typedef struct \{(.*?)\}\s*msgr_service_options;", header_text(), re.S)
    assert m
    fields = []
    for decl in m.group(1).split(";"):
        decl = " ".join(decl.split())
        if decl:
            fm = re.match(r"^(.*?)(\w+)$", decl)
            assert fm
            fields.append((fm.group(2), ctype_of(fm.group(1))))
    ours = [(n, t) for n, t in _ffi.ServiceOptions._fields_]
    assert ours == fields


def header_enum(name: str) -> Dict[str, int]:
    m = re.search(r"typedef enum \{([^}]*)\}\s*" + name + ";", header_text())
    assert m, name
    return {k: int(v) for k, v in re.findall(r"(\w+)\s*=\s*(\d+)", m.group(1))}


@pytest.mark.parametrize(
    "c_name,py_enum",
    [("SESSION_STATE", SessionState), ("LockStatus", LockStatus), ("SESSION_FLAGS", SessionFlags),
     ("MSGR_DISPATCH_MODE", DispatchMode), ("MSGR_TLS", Tls)],
)
def test_enums_match_header(c_name: str, py_enum: Any) -> None:
    values = header_enum(c_name)
    assert values
    for k, v in values.items():
        assert int(py_enum[k]) == v, k
    # every canonical Python member is one of the header's values
    assert {int(m) for m in py_enum.__members__.values()} == set(values.values())


def test_result_codes_match_header() -> None:
    defines = {
        k: int(v, 16)
        for k, v in re.findall(r"#define (\w+) \(\(MSGR_HRESULT\)(0x[0-9A-Fa-f]+)\)", raw_header())
    }
    assert len(defines) >= 50
    assert {k: v.unsigned for k, v in codes.CODES.items()} == defines


def test_other_constants_match_header() -> None:
    text = raw_header()
    assert f'#define CLSID_MsgrSessionManager "{_ffi.CLSID_MsgrSessionManager}"' in text
    assert f"#define MSGR_LOCK_RESPONSE_SIZE {_ffi.MSGR_LOCK_RESPONSE_SIZE}" in text
    assert f"#define MSGR_INFINITE {_ffi.MSGR_INFINITE}" in text


def test_versions_agree() -> None:
    text = raw_header()
    m = re.search(r'#define MSGR_VERSION_STRING "([^"]+)"', text)
    assert m
    assert msgrpriv.version() == m.group(1) == msgrpriv.LIBRARY_VERSION == msgrpriv.__version__
    if CARGO_TOML.is_file():
        cargo = re.search(r'^\[package\][^\[]*?^version\s*=\s*"([^"]+)"', CARGO_TOML.read_text(), re.M | re.S)
        assert cargo and cargo.group(1) == msgrpriv.__version__


def exported_symbols() -> List[str]:
    nm = shutil.which("nm")
    if nm is None:
        if os.environ.get("CI"):
            pytest.fail("nm not found")
        pytest.skip("nm not found")
    out = subprocess.run(
        [nm, "-D", "--defined-only", str(msgrpriv.LIBRARY_PATH)], check=True, capture_output=True, text=True
    ).stdout
    return sorted(
        parts[2] for parts in (line.split() for line in out.splitlines())
        if len(parts) == 3 and parts[1] == "T" and parts[2].startswith("msgr_")
    )


def test_table_matches_exported_symbols() -> None:
    assert exported_symbols() == sorted(name for name, _, _ in _ffi.FUNCTIONS)


def test_library_functions_carry_the_table() -> None:
    lib = msgrpriv._library.lib
    for name, argtypes, restype in _ffi.FUNCTIONS:
        fn = getattr(lib, name)
        assert list(fn.argtypes) == list(argtypes)
        assert fn.restype is restype
    assert ctypes.sizeof(_ffi.ServiceOptions) >= 16
