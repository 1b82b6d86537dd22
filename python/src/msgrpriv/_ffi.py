"""The declaration table: every C type, callback type and exported function, declared once.

``FUNCTIONS`` lists each ``msgr_*`` function of ``include/msgrpriv.h`` as
``(name, argtypes, restype)``; :mod:`msgrpriv._library` applies it to the loaded library.
``CALLBACK_TYPES`` holds one ``CFUNCTYPE`` per callback typedef. ``tests/test_declarations.py``
parses the header and compares it with these tables (names, argument and result types,
the struct layout) and with ``nm -D`` of the library, so Python cannot drift from C.

Handles are tokens, not pointers: each handle type is a distinct ``c_void_p`` subclass so the
table says which kind every parameter takes.
"""

from __future__ import annotations

from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char,
    c_char_p,
    c_int,
    c_int32,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
)
from typing import Any, Dict, List, Sequence, Tuple

HRESULT = c_int32
"""MSGR_HRESULT."""

ENUM = c_int
"""A C enum (SESSION_STATE, LockStatus) as an output parameter: an int."""


class ServiceHandle(c_void_p):
    """``msgr_service *``"""


class ClientHandle(c_void_p):
    """``msgr_client *``"""


class ManagerHandle(c_void_p):
    """``msgr_session_manager *``"""


class SessionHandle(c_void_p):
    """``msgr_session *``"""


# msgr_credential_callback: (user_data, sign_in_name, password buffer, its size) -> bool.
CREDENTIAL_CALLBACK = CFUNCTYPE(c_bool, c_void_p, c_char_p, POINTER(c_char), c_size_t)
# msgr_destroy_callback: (user_data).
DESTROY_CALLBACK = CFUNCTYPE(None, c_void_p)
# msgr_trace_callback: (user_data, level, message).
TRACE_CALLBACK = CFUNCTYPE(None, c_void_p, c_int32, c_char_p)


class ServiceOptions(Structure):
    """``msgr_service_options``"""

    _fields_ = [
        ("struct_size", c_uint32),
        ("invitation_timeout_ms", c_uint32),
        ("manual_clock", c_bool),
        ("registry_path", c_char_p),
        ("transport", c_int32),
        ("server_host", c_char_p),
        ("server_port", c_uint32),
        ("xmpp_resource", c_char_p),
        ("connect_timeout_ms", c_uint32),
        ("request_timeout_ms", c_uint32),
        ("credentials", CREDENTIAL_CALLBACK),
        ("credentials_user_data", c_void_p),
        ("credentials_destroy", DESTROY_CALLBACK),
        ("tls", c_int32),
        ("ca_file", c_char_p),
        ("xmpp_domain", c_char_p),
        ("xmpp_keepalive_ms", c_uint32),
        ("xmpp_reconnect_max_ms", c_uint32),
        ("xmpp_allow_strangers", c_bool),
        ("xmpp_invitations_per_minute", c_uint32),
    ]


P_MANAGER = ManagerHandle
P_SESSION = SessionHandle

# One CFUNCTYPE per callback typedef of the header, in header order.
CALLBACK_TYPES: Dict[str, Any] = {
    "msgr_credential_callback": CREDENTIAL_CALLBACK,
    "msgr_launch_callback": CFUNCTYPE(
        HRESULT, c_void_p, c_char_p, c_char_p, c_char_p, POINTER(c_uint32)
    ),
    "msgr_before_app_launch_callback": CFUNCTYPE(None, c_void_p, P_SESSION, POINTER(c_bool)),
    "msgr_destroy_callback": DESTROY_CALLBACK,
    "msgr_trace_callback": TRACE_CALLBACK,
    "msgr_on_accepted_callback": CFUNCTYPE(None, c_void_p, P_SESSION, c_char_p),
    "msgr_on_app_not_present_callback": CFUNCTYPE(None, c_void_p, P_SESSION, c_char_p, c_char_p),
    "msgr_on_cancelled_callback": CFUNCTYPE(None, c_void_p, P_SESSION, c_char_p),
    "msgr_on_context_data_callback": CFUNCTYPE(None, c_void_p, P_SESSION, c_char_p),
    "msgr_on_declined_callback": CFUNCTYPE(None, c_void_p, P_SESSION, c_char_p),
    "msgr_on_ready_to_launch_callback": CFUNCTYPE(None, c_void_p, P_SESSION),
    "msgr_on_send_error_callback": CFUNCTYPE(None, c_void_p, P_SESSION, HRESULT),
    "msgr_on_state_changed_callback": CFUNCTYPE(None, c_void_p, P_SESSION, ENUM),
    "msgr_on_state_transition_callback": CFUNCTYPE(None, c_void_p, P_SESSION, ENUM, ENUM),
    "msgr_on_termination_callback": CFUNCTYPE(None, c_void_p, P_SESSION, HRESULT, c_char_p),
    "msgr_on_app_registered_callback": CFUNCTYPE(None, c_void_p, P_MANAGER, c_char_p),
    "msgr_on_app_unregistered_callback": CFUNCTYPE(None, c_void_p, P_MANAGER, c_char_p),
    "msgr_on_app_shutdown_callback": CFUNCTYPE(None, c_void_p, P_MANAGER),
    "msgr_on_invitation_callback": CFUNCTYPE(
        None, c_void_p, P_MANAGER, P_SESSION, c_char_p, POINTER(c_bool)
    ),
    "msgr_on_lock_challenge_callback": CFUNCTYPE(None, c_void_p, P_MANAGER, c_int32, c_char_p),
    "msgr_on_lock_enable_callback": CFUNCTYPE(None, c_void_p, P_MANAGER, c_bool),
    "msgr_on_lock_result_callback": CFUNCTYPE(None, c_void_p, P_MANAGER, c_int32, c_bool),
    "msgr_on_lock_status_changed_callback": CFUNCTYPE(None, c_void_p, P_MANAGER, ENUM),
}

_CB = CALLBACK_TYPES
_DESTROY = _CB["msgr_destroy_callback"]
_BUF = (POINTER(c_char), c_size_t, POINTER(c_size_t))  # caller buffer: buf, buf_len, needed


def _advise(owner: Any, typedef: str) -> List[Any]:
    return [owner, _CB[typedef], c_void_p, _DESTROY, POINTER(c_uint32)]


_S = SessionHandle
_M = ManagerHandle
_C = ClientHandle

FUNCTIONS: Sequence[Tuple[str, Sequence[Any], Any]] = (
    # library
    ("msgr_version", [], c_char_p),
    ("msgr_result_text", [HRESULT], c_char_p),
    ("msgr_last_error", [], c_char_p),
    ("msgr_set_trace", [c_int32, TRACE_CALLBACK, c_void_p, DESTROY_CALLBACK], HRESULT),
    ("msgr_lock_compute_response", [c_char_p, c_char_p, POINTER(c_char)], HRESULT),
    # service
    ("msgr_service_create", [POINTER(ServiceOptions), POINTER(ServiceHandle)], HRESULT),
    ("msgr_service_add_app_key", [ServiceHandle, c_char_p, c_char_p], HRESULT),
    ("msgr_service_advance_clock", [ServiceHandle, c_uint64], HRESULT),
    ("msgr_service_set_reachable", [ServiceHandle, c_char_p, c_bool], HRESULT),
    ("msgr_service_destroy", [ServiceHandle], HRESULT),
    # client
    ("msgr_client_create", [ServiceHandle, c_char_p, c_int32, POINTER(ClientHandle)], HRESULT),
    ("msgr_client_sign_out", [_C], HRESULT),
    ("msgr_client_sign_in", [_C], HRESULT),
    ("msgr_client_shutdown", [_C], HRESULT),
    ("msgr_client_destroy", [_C], HRESULT),
    ("msgr_client_dispatch", [_C, c_uint32, POINTER(c_uint32)], HRESULT),
    ("msgr_client_event_fd", [_C, POINTER(c_int32)], HRESULT),
    ("msgr_client_get_connection_state", [_C, POINTER(c_int32), POINTER(HRESULT)], HRESULT),
    ("msgr_client_set_launcher", [_C, _CB["msgr_launch_callback"], c_void_p], HRESULT),
    # session manager
    ("msgr_session_manager_create", [_C, POINTER(ManagerHandle)], HRESULT),
    ("msgr_session_manager_release", [_M], HRESULT),
    ("msgr_session_manager_create_session", [_M, POINTER(SessionHandle)], HRESULT),
    ("msgr_session_manager_get_launching_session", [_M, c_uint32, POINTER(SessionHandle)], HRESULT),
    (
        "msgr_session_manager_register_application",
        [_M, c_char_p, c_char_p, c_char_p, c_char_p, c_uint32],
        HRESULT,
    ),
    ("msgr_session_manager_unregister_application", [_M, c_char_p], HRESULT),
    ("msgr_session_manager_get_applications", [_M, *_BUF], HRESULT),
    ("msgr_session_manager_get_lock_status", [_M, POINTER(ENUM)], HRESULT),
    ("msgr_session_manager_request_challenge", [_M, c_int32], HRESULT),
    ("msgr_session_manager_send_response", [_M, c_char_p, c_char_p, c_int32], HRESULT),
    ("msgr_session_manager_unadvise", [_M, c_uint32], HRESULT),
    ("msgr_session_manager_on_app_registered", _advise(_M, "msgr_on_app_registered_callback"), HRESULT),
    ("msgr_session_manager_on_app_unregistered", _advise(_M, "msgr_on_app_unregistered_callback"), HRESULT),
    ("msgr_session_manager_on_app_shutdown", _advise(_M, "msgr_on_app_shutdown_callback"), HRESULT),
    ("msgr_session_manager_on_invitation", _advise(_M, "msgr_on_invitation_callback"), HRESULT),
    ("msgr_session_manager_on_lock_challenge", _advise(_M, "msgr_on_lock_challenge_callback"), HRESULT),
    ("msgr_session_manager_on_lock_enable", _advise(_M, "msgr_on_lock_enable_callback"), HRESULT),
    ("msgr_session_manager_on_lock_result", _advise(_M, "msgr_on_lock_result_callback"), HRESULT),
    (
        "msgr_session_manager_on_lock_status_changed",
        _advise(_M, "msgr_on_lock_status_changed_callback"),
        HRESULT,
    ),
    # session
    ("msgr_session_add_ref", [_S], HRESULT),
    ("msgr_session_release", [_S], HRESULT),
    ("msgr_session_get_state", [_S, POINTER(ENUM)], HRESULT),
    ("msgr_session_get_flags", [_S, POINTER(c_uint32)], HRESULT),
    ("msgr_session_get_session_id", [_S, *_BUF], HRESULT),
    ("msgr_session_get_application", [_S, *_BUF], HRESULT),
    ("msgr_session_set_application", [_S, c_char_p], HRESULT),
    ("msgr_session_get_application_name", [_S, *_BUF], HRESULT),
    ("msgr_session_get_application_url", [_S, *_BUF], HRESULT),
    ("msgr_session_get_context_data", [_S, *_BUF], HRESULT),
    ("msgr_session_get_local_address", [_S, *_BUF], HRESULT),
    ("msgr_session_set_local_address", [_S, c_char_p], HRESULT),
    ("msgr_session_get_remote_address", [_S, *_BUF], HRESULT),
    ("msgr_session_get_user", [_S, *_BUF], HRESULT),
    ("msgr_session_invite", [_S, c_char_p, c_char_p], HRESULT),
    ("msgr_session_accept", [_S, c_char_p], HRESULT),
    ("msgr_session_decline", [_S, c_char_p], HRESULT),
    ("msgr_session_cancel", [_S, HRESULT, c_char_p], HRESULT),
    ("msgr_session_send_context_data", [_S, c_char_p], HRESULT),
    ("msgr_session_unadvise", [_S, c_uint32], HRESULT),
    ("msgr_session_before_app_launch", _advise(_S, "msgr_before_app_launch_callback"), HRESULT),
    ("msgr_session_on_accepted", _advise(_S, "msgr_on_accepted_callback"), HRESULT),
    ("msgr_session_on_app_not_present", _advise(_S, "msgr_on_app_not_present_callback"), HRESULT),
    ("msgr_session_on_cancelled", _advise(_S, "msgr_on_cancelled_callback"), HRESULT),
    ("msgr_session_on_context_data", _advise(_S, "msgr_on_context_data_callback"), HRESULT),
    ("msgr_session_on_declined", _advise(_S, "msgr_on_declined_callback"), HRESULT),
    ("msgr_session_on_ready_to_launch", _advise(_S, "msgr_on_ready_to_launch_callback"), HRESULT),
    ("msgr_session_on_send_error", _advise(_S, "msgr_on_send_error_callback"), HRESULT),
    ("msgr_session_on_state_changed", _advise(_S, "msgr_on_state_changed_callback"), HRESULT),
    ("msgr_session_on_state_transition", _advise(_S, "msgr_on_state_transition_callback"), HRESULT),
    ("msgr_session_on_termination", _advise(_S, "msgr_on_termination_callback"), HRESULT),
)

# Constants of the header that are not result codes.
MSGR_INFINITE = 0xFFFF_FFFF
MSGR_LOCK_RESPONSE_SIZE = 33
CLSID_MsgrSessionManager = "{E3A3B1D9-5675-43C0-BF04-37BE11939FB7}"
