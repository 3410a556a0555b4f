"""powermeter — read HDHK current modules from Python, through libpowermeter.

The seed's call keeps working::

    from powermeter import get_values
    values = get_values("/etc/powermeter/powermeter.json")
    # [{"id": 0, "device_id": 1, "input": "a", "name": "Input a", "current": 0.92}, ...]

and read() gives every input with its port, address, frequency, time and
status. Values come from powermeterd's snapshot when it is fresh, else from
the serial bus (source="auto").

Standard library only: ctypes over libpowermeter.so.1, found by the dynamic
loader or at the path in $POWERMETER_LIBRARY.
"""

import ctypes
import dataclasses
import datetime
import logging
import math
import os
from typing import List, Optional

from . import _native

__all__ = [
    "get_values", "read", "Config", "Reading",
    "PowermeterError", "ConfigError",
    "library_version", "library_path",
]

log = logging.getLogger("powermeter")

_SOURCES = {
    "auto": _native.PM_SOURCE_AUTO,
    "bus": _native.PM_SOURCE_BUS,
    "snapshot": _native.PM_SOURCE_SNAPSHOT,
}


class PowermeterError(Exception):
    """A libpowermeter error that is not a system error: 'code' is the
    library's negative code (e.g. -PM_ENOSNAPSHOT), str() its text."""

    def __init__(self, message, code=0):
        super().__init__(message)
        self.code = code


class ConfigError(PowermeterError, ValueError):
    """The config file is invalid. str() is the library's text: one line per
    problem, each naming the file and the JSON path; 'errors' lists them."""

    def __init__(self, message, path=None):
        super().__init__(message, -_native.PM_ECONFIG)
        self.path = path
        self.errors = [line for line in message.splitlines() if line]


def _raise(code, filename=None):
    """Raises the exception for a negative library code: OSError (with its
    errno subclass, e.g. FileNotFoundError) for -errno, else PowermeterError."""
    text = _native.strerror(code)
    if 0 < -code < _native.PM_EBASE:
        if filename is not None:
            raise OSError(-code, text, filename)
        raise OSError(-code, text)
    raise PowermeterError(text, code)


@dataclasses.dataclass(frozen=True)
class Reading:
    """One configured input's reading (struct pm_value)."""
    id: int                  # stable position of the input in the config
    device_id: int           # the device's "id"
    port: str                # serial port, e.g. /dev/ttyUSB0
    address: int             # Modbus unit id
    input: str               # channel letter "a".."p"
    channel: int             # 1..16
    name: str                # the input's name from the config
    current: Optional[float]     # amperes (unrounded); None when the device failed
    frequency: Optional[float]   # Hz; None when not read or the device failed
    time: Optional[datetime.datetime]  # when the answer arrived (UTC)
    time_ms: int             # the same, Unix time in ms (0 when failed)
    status: int              # 0, or the device's negative error code
    error: Optional[str]     # why the device failed, for people; None when ok
    # Estimates (the module measures current only): current x the circuit's
    # configured voltage x power factor, and powermeterd's counters.
    power: Optional[float] = None    # W; None when the device failed
    energy: Optional[float] = None   # Wh counter; None unless powermeterd runs
    charge: Optional[float] = None   # Ah counter; None unless powermeterd runs
    phase: Optional[str] = None      # "L1".."L3" when configured

    @property
    def ok(self):
        return self.status == 0

    def as_dict(self):
        return dataclasses.asdict(self)


def _number(x):
    return None if math.isnan(x) else x


class Config:
    """A loaded and validated config (pm_config). Load once, read often::

        with powermeter.Config("/etc/powermeter/powermeter.json") as cfg:
            for r in cfg.read(source="bus"):
                print(r.device_id, r.input, r.current)

    Raises ConfigError for an invalid file, OSError (FileNotFoundError,
    PermissionError, ...) when it cannot be read. path None: the default,
    /etc/powermeter/powermeter.json."""

    def __init__(self, path=None):
        lib = _native.lib()
        handle = ctypes.c_void_p()
        errors = ctypes.c_void_p()
        cpath = None if path is None else os.fsencode(path)
        rc = lib.pm_config_load(ctypes.byref(handle), cpath, ctypes.byref(errors))
        if rc == -_native.PM_ECONFIG:
            text = _native.take_text(errors) or _native.strerror(rc)
            raise ConfigError(text.rstrip("\n"), path)
        if rc < 0:
            _raise(rc, path)
        self._lib = lib
        self._handle = handle
        self.path = path

    def close(self):
        """Frees the config; reading afterwards raises ValueError."""
        if getattr(self, "_handle", None) is not None:
            self._lib.pm_config_free(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    def _live(self):
        if self._handle is None:
            raise ValueError("the config is closed")
        return self._handle

    @property
    def device_ids(self) -> List[int]:
        """The devices' ids, in file order."""
        h = self._live()
        n = self._lib.pm_config_device_count(h)
        return [self._lib.pm_config_device_id(h, i) for i in range(n)]

    def read(self, device_id=None, source="auto") -> List[Reading]:
        """Reads every device (or only the one with 'device_id'). Returns a
        Reading for every configured input in config order, failed devices
        included (status < 0, error set). source: "auto" (the daemon's fresh
        snapshot, else the bus), "bus" or "snapshot"."""
        if source not in _SOURCES:
            raise ValueError("source must be one of %s, not %r"
                             % (", ".join(_SOURCES), source))
        h = self._live()
        if device_id is None:
            want = -1
        else:
            if device_id not in self.device_ids:
                raise ValueError("no device with id %r in the config" % (device_id,))
            want = device_id
        out = ctypes.c_void_p()
        rc = self._lib.pm_read(h, want, _SOURCES[source], ctypes.byref(out))
        if rc < 0:
            _raise(rc)
        try:
            return self._readings(out)
        finally:
            self._lib.pm_readings_free(out)

    def _readings(self, r):
        lib = self._lib
        errors = {}
        readings = []
        for i in range(lib.pm_readings_count(r)):
            v = lib.pm_readings_get(r, i).contents
            error = None
            if v.status < 0:
                if v.device_id not in errors:
                    why = lib.pm_readings_error(r, v.device_id)
                    errors[v.device_id] = (why.decode("utf-8", "replace") if why
                                           else _native.strerror(v.status))
                error = errors[v.device_id]
            ok = v.status == 0
            readings.append(Reading(
                id=v.id,
                device_id=v.device_id,
                port=os.fsdecode(v.port) if v.port else "",
                address=v.address,
                input=v.input.decode("ascii", "replace"),
                channel=v.channel,
                name=v.name.decode("utf-8", "replace") if v.name else "",
                current=_number(v.current) if ok else None,
                frequency=_number(v.frequency) if ok else None,
                time=(datetime.datetime.fromtimestamp(v.time_ms / 1000,
                                                      datetime.timezone.utc)
                      if ok and v.time_ms > 0 else None),
                time_ms=v.time_ms if ok else 0,
                status=v.status,
                error=error,
                power=_number(v.power) if ok else None,
                energy=_number(v.energy) if ok else None,
                charge=_number(v.charge) if ok else None,
                phase=v.phase.decode("ascii", "replace") if v.phase else None,
            ))
        return readings


def read(config_path=None, source="auto", device_id=None) -> List[Reading]:
    """Loads the config and reads its devices: see Config.read()."""
    with Config(config_path) as cfg:
        return cfg.read(device_id=device_id, source=source)


def get_values(config_path=None):
    """The seed's call: a list with one dict per input of the devices that
    answered, in config order::

        {"id": 0, "device_id": 1, "input": "a", "name": "Input a", "current": 0.92}

    'id' is the input's stable position in the config, 'current' amperes
    rounded to 2 decimals. A device that fails is left out, with a warning
    on the "powermeter" logger. Raises ConfigError for an invalid config."""
    values = []
    warned = set()
    for r in read(config_path):
        if not r.ok:
            if r.device_id not in warned:
                warned.add(r.device_id)
                log.warning("%s; skipping its inputs", r.error)
            continue
        values.append({
            "id": r.id,
            "device_id": r.device_id,
            "input": r.input,
            "name": r.name,
            "current": round(r.current, 2),
        })
    return values


def library_version():
    """libpowermeter's version, e.g. "0.2.0"."""
    return _native.lib().pm_version().decode("ascii")


def library_path():
    """The name or path libpowermeter was loaded by."""
    return _native.lib_name()
