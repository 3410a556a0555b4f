"""ctypes declarations of libpowermeter's public API, as in
include/powermeter/powermeter.h (ABI 1, libpowermeter.so.1), and how the
library is found: $POWERMETER_LIBRARY when set, else the dynamic loader."""

import ctypes
import ctypes.util
import os
import threading

SONAME = "libpowermeter.so.1"

# enum pm_error, returned negated.
PM_EBASE = 0x504D00
PM_ECONFIG = PM_EBASE + 1
PM_ECRC = PM_EBASE + 2
PM_EFRAME = PM_EBASE + 3
PM_EUNIT = PM_EBASE + 4
PM_EEXCEPTION = PM_EBASE + 5
PM_ESTALE = PM_EBASE + 6
PM_ENOSNAPSHOT = PM_EBASE + 7
PM_ETOOBIG = PM_EBASE + 8
PM_ENOTREG = PM_EBASE + 9

# enum pm_source
PM_SOURCE_AUTO = 0
PM_SOURCE_BUS = 1
PM_SOURCE_SNAPSHOT = 2

# enum pm_format
PM_FORMAT_JSON = 0
PM_FORMAT_TABLE = 1
PM_FORMAT_INFLUX = 2
PM_FORMAT_CIRCUITS = 3


class Value(ctypes.Structure):
    """struct pm_value, member for member."""
    _fields_ = [
        ("id", ctypes.c_int),
        ("device_id", ctypes.c_int),
        ("port", ctypes.c_char_p),
        ("address", ctypes.c_int),
        ("input", ctypes.c_char),
        ("channel", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("current", ctypes.c_double),
        ("frequency", ctypes.c_double),
        ("time_ms", ctypes.c_int64),
        ("status", ctypes.c_int),
        ("power", ctypes.c_double),
        ("energy", ctypes.c_double),
        ("charge", ctypes.c_double),
        ("phase", ctypes.c_char_p),
    ]


_p = ctypes.c_void_p
_pp = ctypes.POINTER(ctypes.c_void_p)

# name: (restype, argtypes) — every function of the header.
_PROTOTYPES = {
    "pm_strerror": (ctypes.c_char_p, [ctypes.c_int]),
    "pm_version": (ctypes.c_char_p, []),
    "pm_config_load": (ctypes.c_int, [_pp, ctypes.c_char_p, _pp]),
    "pm_config_free": (None, [_p]),
    "pm_config_device_count": (ctypes.c_size_t, [_p]),
    "pm_config_device_id": (ctypes.c_int, [_p, ctypes.c_size_t]),
    "pm_read": (ctypes.c_int, [_p, ctypes.c_int, ctypes.c_int, _pp]),
    "pm_readings_free": (None, [_p]),
    "pm_readings_count": (ctypes.c_size_t, [_p]),
    "pm_readings_get": (ctypes.POINTER(Value), [_p, ctypes.c_size_t]),
    "pm_readings_failed": (ctypes.c_size_t, [_p]),
    "pm_readings_error": (ctypes.c_char_p, [_p, ctypes.c_int]),
    "pm_readings_format": (ctypes.c_int, [_p, ctypes.c_int, ctypes.c_char_p, _pp]),
}

_lock = threading.Lock()
_loaded = None  # (CDLL, the name it was loaded by)


def _candidates():
    explicit = os.environ.get("POWERMETER_LIBRARY")
    if explicit:
        # Honoured strictly: a wrong path is an error, not a fallback.
        return [explicit]
    names = [SONAME]
    # find_library also looks where gcc and ld would; only ABI 1 will do.
    found = ctypes.util.find_library("powermeter")
    if found and found.endswith(".so.1") and found not in names:
        names.append(found)
    return names


def _open():
    problems = []
    for name in _candidates():
        try:
            lib = ctypes.CDLL(name)
        except OSError as e:
            problems.append(str(e))
            continue
        try:
            for fn, (restype, argtypes) in _PROTOTYPES.items():
                f = getattr(lib, fn)
                f.restype = restype
                f.argtypes = argtypes
        except AttributeError as e:
            problems.append("%s: not libpowermeter ABI 1 (%s)" % (name, e))
            continue
        return lib, name
    hint = ("check POWERMETER_LIBRARY" if os.environ.get("POWERMETER_LIBRARY")
            else "install libpowermeter and run ldconfig, or set POWERMETER_LIBRARY "
                 "to the library's path")
    raise OSError("cannot load libpowermeter (%s): %s" % (hint, "; ".join(problems)))


def lib():
    """The loaded library (loaded once per process, on first use)."""
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = _open()
        return _loaded[0]


def lib_name():
    """The name or path the library was loaded by."""
    lib()
    return _loaded[1]


_libc = ctypes.CDLL(None)
_libc.free.restype = None
_libc.free.argtypes = [ctypes.c_void_p]


def take_text(ptr):
    """Copies the malloc'd C string in the c_void_p 'ptr' and frees it."""
    if not ptr.value:
        return None
    try:
        return ctypes.string_at(ptr.value).decode("utf-8", "replace")
    finally:
        _libc.free(ptr.value)
        ptr.value = None


def strerror(code):
    return lib().pm_strerror(code).decode("utf-8", "replace")
