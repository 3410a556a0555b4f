#!/usr/bin/python3
"""Writes the Zabbix templates for powermeterd, one per Zabbix version
(zabbix_powermeter_template_6_0.yaml, _7_0.yaml), from the one description
below, so that both files keep the same items and the same UUIDs.

    config/zabbix/gen_templates.py [OUTDIR]     (default: this directory)

The UUIDs are derived from each entity's identity (a hash, shaped as a
version 4 UUID), so regenerating never changes them. tests/integration/
templates.py checks that the committed files are what this script writes.
"""
import hashlib
import os
import re
import sys

GROUP = "Templates/Power"
TEMPLATES = [
    # (template name, item type for the agent items, suffix in descriptions)
    ("Powermeter HDHK by Zabbix agent", None, "passive checks"),
    ("Powermeter HDHK by Zabbix agent active", "ZABBIX_ACTIVE", "active checks"),
]

MACROS = [
    ("{$POWERMETER.INTERVAL}", "30s",
     "How often the agent asks for the values (powermeter json)."),
    ("{$POWERMETER.CURRENT.MAX}", "16",
     "Overload threshold in A. Per circuit with its key as context: "
     "{$POWERMETER.CURRENT.MAX:\"1.a\"}."),
    ("{$POWERMETER.CURRENT.WARN}", "13",
     "Warning threshold in A. Per circuit with its key as context: "
     "{$POWERMETER.CURRENT.WARN:\"1.a\"}."),
    ("{$POWERMETER.OVERLOAD.PERIOD}", "2m",
     "A circuit must stay above the threshold this long (motor inrush is "
     "not an overload)."),
    ("{$POWERMETER.NODATA.PERIOD}", "5m",
     "No values from a module for this long: stale data."),
]

VALUEMAP = "powermeterd state"

DESCRIPTION = (
    "HDHK 16-channel AC current modules read by powermeterd over RS-485. "
    "The agent runs powermeter(1), which answers from powermeterd's "
    "snapshot and never opens a serial port the daemon owns. Install "
    "userparameter_powermeter.conf into the agent's include directory. "
    "Per-circuit thresholds: user macros with the circuit key "
    "(<device id>.<input>) as context. Uses %s.")


def uuid_for(*identity):
    """A stable UUID in version 4 form for the entity called 'identity'."""
    h = bytearray(hashlib.sha256("\0".join(("powermeterd",) + identity).encode()).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x40     # version 4
    h[8] = (h[8] & 0x3F) | 0x80     # RFC 4122 variant
    return h.hex()


def ref(template, key):
    return "/%s/%s" % (template, key)


# What power and energy are: the module measures current only.
ESTIMATE = ("An estimate: current x the circuit's configured voltage x power "
            "factor (powermeter.json(5), POWER AND ENERGY); the modules measure "
            "current only.")

# A number, not the empty text or null of a value powermeterd does not know
# (a module down, energy not yet saved): such a value is discarded rather
# than making the item unsupported.
NUMBER = r"^-?[0-9]"


def dependent(template, ident, name, key, master, jsonpath, value_type=None,
              units=None, tags=(), discard=False, extra=None, history=None,
              numeric=False):
    item = {"uuid": uuid_for(template, ident, key), "name": name,
            "type": "DEPENDENT", "key": key, "delay": "0"}
    if history:
        item["history"] = history
    if value_type:
        item["value_type"] = value_type
    if value_type in ("CHAR", "TEXT"):
        item["trends"] = "0"
    if units:
        item["units"] = units
    if extra:
        item.update(extra)
    step = {"type": "JSONPATH", "parameters": [jsonpath]}
    if discard:
        # A module that is down is missing from powermeter json: no value
        # (the nodata trigger sees it), not an unsupported item.
        step["error_handler"] = "DISCARD_VALUE"
    item["preprocessing"] = [step]
    if numeric:
        item["preprocessing"].append({"type": "MATCHES_REGEX", "parameters": [NUMBER],
                                      "error_handler": "DISCARD_VALUE"})
    item["master_item"] = {"key": master}
    if tags:
        item["tags"] = [{"tag": t, "value": v} for t, v in tags]
    return item


def template(version, tname, agent_type, checks):
    t = tname
    fresh_expr = "last(%s)=0" % ref(t, "powermeter.snapshot.fresh")
    fresh_name = "powermeterd is not running or its snapshot is stale"

    def master(key, name, delay, history, description):
        item = {"uuid": uuid_for(t, "item", key), "name": name}
        if agent_type:
            item["type"] = agent_type
        item.update({"key": key, "delay": delay, "history": history,
                     "trends": "0", "value_type": "TEXT",
                     "description": description,
                     "tags": [{"tag": "component", "value": "raw"}]})
        return item

    items = [
        master("powermeter.json", "Powermeter: values", "{$POWERMETER.INTERVAL}", "1h",
               "The seed's JSON array (id, device_id, input, name, current in A) "
               "from powermeterd's snapshot; empty when no current value is known."),
        master("powermeter.status", "Powermeter: status", "{$POWERMETER.INTERVAL}", "1h",
               "powermeterd's snapshot age and every module's health "
               "(powermeter zabbix status)."),
        master("powermeter.discovery", "Powermeter: discovery", "1h", "0",
               "The configured inputs for low-level discovery "
               "(powermeter zabbix discovery)."),
        master("powermeter.circuits", "Powermeter: circuits (estimated power and energy)",
               "{$POWERMETER.INTERVAL}", "1h",
               "Every circuit's current (A), phase, breaker and tags with its estimated "
               "power (W) and energy counter (Wh) from powermeterd's snapshot "
               "(powermeter zabbix circuits); empty while the snapshot is missing or "
               "stale. Power and energy are estimates: current x the configured "
               "voltage x power factor; the modules measure current only."),
    ]
    fresh = dependent(t, "item", "powermeterd: snapshot fresh", "powermeter.snapshot.fresh",
                      "powermeter.status", "$.snapshot.fresh",
                      tags=[("component", "daemon")],
                      extra={"valuemap": {"name": VALUEMAP}})
    fresh["triggers"] = [{
        "uuid": uuid_for(t, "trigger", fresh_expr),
        "expression": fresh_expr,
        "name": fresh_name,
        "priority": "AVERAGE",
        "description": "powermeter json cannot give current values while the "
                       "daemon that owns the serial ports does not update its "
                       "snapshot; the item 'powermeterd: snapshot error' says "
                       "why. Check: systemctl status powermeterd.",
    }]
    items += [
        dependent(t, "item", "powermeterd: snapshot age", "powermeter.snapshot.age",
                  "powermeter.status", "$.snapshot.age", value_type="FLOAT",
                  units="s", tags=[("component", "daemon")]),
        dependent(t, "item", "powermeterd: snapshot error", "powermeter.snapshot.error",
                  "powermeter.status", "$.snapshot.error", value_type="CHAR",
                  tags=[("component", "daemon")]),
        fresh,
    ]
    items.sort(key=lambda i: i["key"])

    # ---- inputs ---------------------------------------------------------
    cur_key = "powermeter.current[{#KEY}]"
    over_max = '{$POWERMETER.CURRENT.MAX:"{#KEY}"}'
    over_warn = '{$POWERMETER.CURRENT.WARN:"{#KEY}"}'
    over_expr = "min(%s,{$POWERMETER.OVERLOAD.PERIOD})>%s" % (ref(t, cur_key), over_max)
    warn_expr = "min(%s,{$POWERMETER.OVERLOAD.PERIOD})>%s" % (ref(t, cur_key), over_warn)
    over_name = "Circuit {#KEY} ({#NAME}): current above %s A" % over_max
    inputs_rule = {
        "uuid": uuid_for(t, "lld", "powermeter.inputs"),
        "name": "Inputs",
        "type": "DEPENDENT",
        "key": "powermeter.inputs",
        "delay": "0",
        "lifetime": "30d",
        "description": "One circuit per configured input; {#KEY} (device id.input) "
                       "stays with the circuit when the config grows. {#PHASE} is "
                       "the circuit's phase (L1, L2, L3; empty when not configured), "
                       "{#TAG.<KEY>} each of its tags (customer: {#TAG.CUSTOMER}), "
                       "for filters and overrides.",
        "item_prototypes": [
            dependent(t, "prototype", "Circuit {#KEY} ({#NAME}): current", cur_key,
                      "powermeter.json",
                      '$[?(@.device_id == {#DEVICE_ID} && @.input == "{#INPUT}")].current.first()',
                      value_type="FLOAT", units="A", discard=True,
                      tags=[("component", "current"), ("module", "{#DEVICE_ID}"),
                            ("circuit", "{#KEY}")],
                      extra={"description": "Module {#DEVICE_ID} on {#PORT} address "
                                            "{#ADDRESS}, input {#INPUT}."}),
            dependent(t, "prototype", "Circuit {#KEY} ({#NAME}): power (estimated)",
                      "powermeter.power[{#KEY}]", "powermeter.circuits",
                      '$.circuits[?(@.key == "{#KEY}")].power.first()',
                      value_type="FLOAT", units="W", discard=True, numeric=True,
                      tags=[("component", "power"), ("module", "{#DEVICE_ID}"),
                            ("circuit", "{#KEY}"), ("phase", "{#PHASE}")],
                      extra={"description": "Estimated power of module {#DEVICE_ID} "
                                            "input {#INPUT}. " + ESTIMATE}),
            dependent(t, "prototype", "Circuit {#KEY} ({#NAME}): energy (estimated)",
                      "powermeter.energy[{#KEY}]", "powermeter.circuits",
                      '$.circuits[?(@.key == "{#KEY}")].energy.first()',
                      value_type="FLOAT", units="Wh", discard=True, numeric=True,
                      tags=[("component", "energy"), ("module", "{#DEVICE_ID}"),
                            ("circuit", "{#KEY}"), ("phase", "{#PHASE}")],
                      extra={"description": "Estimated energy of module {#DEVICE_ID} "
                                            "input {#INPUT} since powermeterd started "
                                            "counting it: a counter that only goes up "
                                            "(saved across restarts; shown one to two "
                                            "save intervals late). " + ESTIMATE}),
        ],
        "trigger_prototypes": [
            {"uuid": uuid_for(t, "trigger", over_expr), "expression": over_expr,
             "name": over_name, "opdata": "Current: {ITEM.LASTVALUE1}",
             "priority": "HIGH",
             "description": "The circuit draws more than its breaker or cable "
                            "allows. Set the limit per circuit with "
                            "{$POWERMETER.CURRENT.MAX:\"{#KEY}\"}."},
            {"uuid": uuid_for(t, "trigger", warn_expr), "expression": warn_expr,
             "name": "Circuit {#KEY} ({#NAME}): current above %s A" % over_warn,
             "opdata": "Current: {ITEM.LASTVALUE1}", "priority": "WARNING",
             "dependencies": [{"name": over_name, "expression": over_expr}]},
        ],
        "master_item": {"key": "powermeter.discovery"},
    }

    # ---- modules ----------------------------------------------------------
    up_key = "powermeter.module.up[{#DEVICE_ID}]"
    total_key = "powermeter.module.current.total[{#DEVICE_ID}]"
    max_key = "powermeter.module.current.max[{#DEVICE_ID}]"
    err_key = "powermeter.module.error[{#DEVICE_ID}]"
    by_dev = "$.devices[?(@.device_id == {#DEVICE_ID})]"
    mod_tags = [("component", "module"), ("module", "{#DEVICE_ID}")]
    offline_expr = "last(%s)=0" % ref(t, up_key)
    offline_name = "Module {#DEVICE_ID} on {#PORT} address {#ADDRESS} is offline"
    nodata_expr = "nodata(%s,{$POWERMETER.NODATA.PERIOD})=1" % ref(t, total_key)
    modules_rule = {
        "uuid": uuid_for(t, "lld", "powermeter.modules"),
        "name": "Modules",
        "type": "DEPENDENT",
        "key": "powermeter.modules",
        "delay": "0",
        "lifetime": "30d",
        "description": "One entry per configured module, from powermeter zabbix status.",
        "item_prototypes": [
            dependent(t, "prototype", "Module {#DEVICE_ID}: up", up_key, "powermeter.status",
                      by_dev + ".up.first()", tags=mod_tags,
                      extra={"valuemap": {"name": VALUEMAP}}),
            dependent(t, "prototype", "Module {#DEVICE_ID}: time since last reading",
                      "powermeter.module.age[{#DEVICE_ID}]", "powermeter.status",
                      by_dev + ".age.first()", value_type="FLOAT", units="s", tags=mod_tags),
            dependent(t, "prototype", "Module {#DEVICE_ID}: consecutive failures",
                      "powermeter.module.failures[{#DEVICE_ID}]", "powermeter.status",
                      by_dev + ".consecutive_failures.first()", tags=mod_tags),
            dependent(t, "prototype", "Module {#DEVICE_ID}: last error", err_key,
                      "powermeter.status", by_dev + ".error.first()", value_type="CHAR",
                      tags=mod_tags),
            dependent(t, "prototype", "Module {#DEVICE_ID}: total current", total_key,
                      "powermeter.json", "$[?(@.device_id == {#DEVICE_ID})].current.sum()",
                      value_type="FLOAT", units="A", discard=True, tags=mod_tags),
            dependent(t, "prototype", "Module {#DEVICE_ID}: highest circuit current", max_key,
                      "powermeter.json", "$[?(@.device_id == {#DEVICE_ID})].current.max()",
                      value_type="FLOAT", units="A", discard=True, tags=mod_tags),
        ],
        "trigger_prototypes": [
            {"uuid": uuid_for(t, "trigger", offline_expr), "expression": offline_expr,
             "name": offline_name, "priority": "HIGH",
             "description": "powermeterd cannot read this module; the item "
                            "'Module {#DEVICE_ID}: last error' says why (wiring "
                            "A/B, 12 V supply, address, baud rate, converter).",
             "dependencies": [{"name": fresh_name, "expression": fresh_expr}]},
            {"uuid": uuid_for(t, "trigger", nodata_expr), "expression": nodata_expr,
             "name": "Module {#DEVICE_ID}: no current values for {$POWERMETER.NODATA.PERIOD}",
             "priority": "AVERAGE",
             "description": "Stale data: the agent got no current value of this "
                            "module for the period.",
             "dependencies": [{"name": offline_name, "expression": offline_expr},
                              {"name": fresh_name, "expression": fresh_expr}]},
        ],
        "graph_prototypes": [
            {"uuid": uuid_for(t, "graph", "module current"),
             "name": "Module {#DEVICE_ID}: current",
             "graph_items": [
                 {"color": "1A7C11", "item": {"host": t, "key": total_key}},
                 {"sortorder": "1", "color": "F63100", "item": {"host": t, "key": max_key}},
             ]},
        ],
        "master_item": {"key": "powermeter.status"},
        "lld_macro_paths": [
            {"lld_macro": "{#ADDRESS}", "path": "$.address"},
            {"lld_macro": "{#DEVICE_ID}", "path": "$.device_id"},
            {"lld_macro": "{#PORT}", "path": "$.port"},
        ],
        "preprocessing": [{"type": "JSONPATH", "parameters": ["$.devices"]}],
    }
    if version == "7.0":
        for rule in (inputs_rule, modules_rule):
            rule["enabled_lifetime_type"] = "DISABLE_NEVER"
            # keep the export's key order: after lifetime
            keys = list(rule)
            keys.remove("enabled_lifetime_type")
            keys.insert(keys.index("lifetime") + 1, "enabled_lifetime_type")
            rule_copy = {k: rule[k] for k in keys}
            rule.clear()
            rule.update(rule_copy)

    return {
        "uuid": uuid_for(t, "template"),
        "template": t,
        "name": t,
        "description": DESCRIPTION % checks,
        "groups": [{"name": GROUP}],
        "items": items,
        "discovery_rules": [inputs_rule, modules_rule],
        "tags": [{"tag": "class", "value": "power"}, {"tag": "target", "value": "hdhk"}],
        "macros": [{"macro": m, "value": v, "description": d} for m, v, d in MACROS],
        "valuemaps": [{
            "uuid": uuid_for(t, "valuemap", VALUEMAP),
            "name": VALUEMAP,
            "mappings": [{"value": "0", "newvalue": "Down"}, {"value": "1", "newvalue": "Up"}],
        }],
    }


def export(version):
    groups_key = "template_groups" if version == "7.0" else "groups"
    templates = [template(version, n, a, c) for n, a, c in TEMPLATES]
    return {"zabbix_export": {
        "version": version,
        groups_key: [{"uuid": uuid_for("group", GROUP), "name": GROUP}],
        "templates": templates,
    }}


# ---- a YAML emitter for this data: mappings, sequences, strings -----------

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*\Z")
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


def scalar(s):
    """Plain when YAML reads it back as the same string, else single-quoted."""
    if not isinstance(s, str):
        raise TypeError("only strings in templates: %r" % (s,))
    if _PLAIN.match(s) and s.lower() not in _RESERVED:
        return s
    return "'" + s.replace("'", "''") + "'"


def emit(node, indent, out):
    pad = " " * indent
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, (dict, list)):
                out.append("%s%s:" % (pad, k))
                emit(v, indent + 2, out)
            else:
                out.append("%s%s: %s" % (pad, k, scalar(v)))
    elif isinstance(node, list):
        for v in node:
            if isinstance(v, dict):
                sub = []
                emit(v, indent + 2, sub)
                sub[0] = pad + "- " + sub[0][indent + 2:]
                out.extend(sub)
            elif isinstance(v, list):
                raise TypeError("nested sequences are not used")
            else:
                out.append("%s- %s" % (pad, scalar(v)))
    else:
        raise TypeError(node)


def render(version):
    out = []
    emit(export(version), 0, out)
    return "\n".join(out) + "\n"


FILES = {"6.0": "zabbix_powermeter_template_6_0.yaml",
         "7.0": "zabbix_powermeter_template_7_0.yaml"}


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    for version, name in FILES.items():
        with open(os.path.join(outdir, name), "w") as f:
            f.write(render(version))


if __name__ == "__main__":
    main()
