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
SEVERITY_MAP = "powermeterd alarm severity"

DESCRIPTION = (
    "HDHK 16-channel AC current modules read by powermeterd over RS-485. "
    "The agent runs powermeter(1), which answers from powermeterd's "
    "snapshot and never opens a serial port the daemon owns. Install "
    "userparameter_powermeter.conf into the agent's include directory. "
    "Per-circuit thresholds: user macros with the circuit key "
    "(<device id>.<input>) as context. The alarm triggers (feeds, phases, "
    "circuits, modules) follow powermeterd's own alarms: thresholds, hold "
    "times and clear margins are those of the config's \"alarms\" "
    "(powermeter.json(5)), never repeated here. Uses %s.")


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
              numeric=False, per_second=False):
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
    if per_second:
        # a counter of the daemon's: its rate (a restart's reset is skipped)
        item["preprocessing"].append({"type": "CHANGE_PER_SECOND", "parameters": [""]})
    item["master_item"] = {"key": master}
    if tags:
        item["tags"] = [{"tag": t, "value": v} for t, v in tags]
    return item


# ---- the daemon's alarms ------------------------------------------------------
# powermeter zabbix status gives, per subject, the severity of powermeterd's
# active alarm: 0 none, 1 warning, 2 critical, null while the daemon's
# judgement is not known (no fresh snapshot), which is discarded so that a
# trigger keeps its state and "powermeterd is not running" speaks instead.

ALARMS_BASIS = ("powermeterd decides this alarm with the thresholds, hold time and "
                "clear margin of its config (\"alarms\" in powermeter.json(5)); the "
                "trigger follows the daemon's state, it does not judge again.")


def severity_item(template, name, key, master, jsonpath, tags=(), description=None):
    """A dependent item with the daemon's severity of one alarm."""
    extra = {"valuemap": {"name": SEVERITY_MAP}}
    if description:
        extra["description"] = description
    return dependent(template, "prototype" if "{#" in key else "item", name, key,
                     master, jsonpath, tags=tags, discard=True, numeric=True,
                     extra=extra)


def severity_triggers(template, key, what, description, fresh):
    """Two triggers on the daemon's severity item 'key': HIGH while the
    alarm is critical, WARNING while it is a warning. They depend on the
    daemon running: with a stale snapshot the item keeps its last value."""
    out = []
    for level, word, priority in ((2, "critical", "HIGH"), (1, "warning", "WARNING")):
        expr = "last(%s)=%d" % (ref(template, key), level)
        out.append({"uuid": uuid_for(template, "trigger", expr), "expression": expr,
                    "name": "%s (powermeterd: %s)" % (what, word),
                    "priority": priority,
                    "description": description + " " + ALARMS_BASIS,
                    "dependencies": [fresh]})
    return out


def lifetime_7_0(rule):
    """Zabbix 7.0's enabled_lifetime_type, after lifetime as in an export."""
    rule["enabled_lifetime_type"] = "DISABLE_NEVER"
    keys = list(rule)
    keys.remove("enabled_lifetime_type")
    keys.insert(keys.index("lifetime") + 1, "enabled_lifetime_type")
    rule_copy = {k: rule[k] for k in keys}
    rule.clear()
    rule.update(rule_copy)


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
        master("powermeter.feeds", "Powermeter: feeds discovery", "1h", "0",
               "The configured feeds' phases for low-level discovery "
               "(powermeter zabbix feeds)."),
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
    fresh_dep = {"name": fresh_name, "expression": fresh_expr}
    spool_key = "powermeter.alarm.spool_backlog"
    spool = severity_item(t, "powermeterd: spool backlog alarm", spool_key,
                          "powermeter.status", "$.alarms.spool_backlog",
                          tags=[("component", "alarm"), ("alarm", "spool_backlog")],
                          description="Severity of powermeterd's spool_backlog alarm "
                                      "(0 none, 1 warning, 2 critical): points for "
                                      "InfluxDB waiting on disk.")
    spool["triggers"] = severity_triggers(
        t, spool_key, "powermeterd: InfluxDB points pile up in the spool",
        "InfluxDB does not take the points: they wait in the spool on disk, "
        "which is limited.", fresh_dep)
    items += [
        dependent(t, "item", "powermeterd: active alarms", "powermeter.alarms.count",
                  "powermeter.status", "$.alarms.count", discard=True, numeric=True,
                  tags=[("component", "alarm")],
                  extra={"description": "How many of powermeterd's alarms are raised "
                                        "(powermeter status lists them)."}),
        severity_item(t, "powermeterd: worst active alarm", "powermeter.alarms.worst",
                      "powermeter.status", "$.alarms.worst",
                      tags=[("component", "alarm")],
                      description="The highest severity among powermeterd's raised "
                                  "alarms: 0 none, 1 warning, 2 critical."),
        spool,
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
    cl_key = "powermeter.alarm.circuit_load[{#KEY}]"
    ll_key = "powermeter.alarm.load_lost[{#KEY}]"
    by_circuit = '$.circuits[?(@.key == "{#KEY}")]'
    circuit_tags = [("component", "alarm"), ("module", "{#DEVICE_ID}"),
                    ("circuit", "{#KEY}")]
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
            severity_item(t, "Circuit {#KEY} ({#NAME}): load alarm", cl_key,
                          "powermeter.status", by_circuit + ".severity.circuit_load.first()",
                          tags=circuit_tags + [("alarm", "circuit_load")],
                          description="Severity of powermeterd's circuit_load alarm of "
                                      "the circuit (% of its breaker): 0 none, 1 warning, "
                                      "2 critical; always 0 without a breaker."),
            severity_item(t, "Circuit {#KEY} ({#NAME}): load lost alarm", ll_key,
                          "powermeter.status", by_circuit + ".severity.load_lost.first()",
                          tags=circuit_tags + [("alarm", "load_lost")],
                          description="Severity of powermeterd's load_lost alarm of the "
                                      "circuit (it carried load and dropped to almost "
                                      "zero): 0 none, 1 warning, 2 critical."),
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
        ] + severity_triggers(t, cl_key, "Circuit {#KEY} ({#NAME}): overloaded",
                              "The circuit draws too much of its breaker's rating "
                              "(80 % continuous load is the usual warning).", fresh_dep)
          + severity_triggers(t, ll_key, "Circuit {#KEY} ({#NAME}): load lost",
                              "The circuit carried load and now draws almost nothing: "
                              "a tripped breaker, a switched-off load or an open "
                              "current transformer.", fresh_dep),
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
    mo_key = "powermeter.alarm.module_offline[{#DEVICE_ID}]"
    st_key = "powermeter.alarm.stale[{#DEVICE_ID}]"
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
            dependent(t, "prototype", "Module {#DEVICE_ID}: requests retried",
                      "powermeter.module.retries[{#DEVICE_ID}]", "powermeter.status",
                      by_dev + ".retries.first()", value_type="FLOAT", units="/s",
                      per_second=True,
                      tags=mod_tags + [("component", "bus")],
                      extra={"description": "Requests sent again after a bad answer "
                                            "(timeout, CRC error, short or foreign "
                                            "frame), per second: a rise means a "
                                            "noisy RS-485 line (termination, "
                                            "shield, cable route)."}),
            dependent(t, "prototype", "Module {#DEVICE_ID}: CRC errors",
                      "powermeter.module.crc_errors[{#DEVICE_ID}]", "powermeter.status",
                      by_dev + ".crc_errors.first()", value_type="FLOAT", units="/s",
                      per_second=True,
                      tags=mod_tags + [("component", "bus")],
                      extra={"description": "Answers that failed their CRC, per "
                                            "second (each one retried, none ever "
                                            "taken for a value)."}),
            dependent(t, "prototype", "Module {#DEVICE_ID}: last error", err_key,
                      "powermeter.status", by_dev + ".error.first()", value_type="CHAR",
                      tags=mod_tags),
            dependent(t, "prototype", "Module {#DEVICE_ID}: total current", total_key,
                      "powermeter.json", "$[?(@.device_id == {#DEVICE_ID})].current.sum()",
                      value_type="FLOAT", units="A", discard=True, tags=mod_tags),
            dependent(t, "prototype", "Module {#DEVICE_ID}: highest circuit current", max_key,
                      "powermeter.json", "$[?(@.device_id == {#DEVICE_ID})].current.max()",
                      value_type="FLOAT", units="A", discard=True, tags=mod_tags),
            severity_item(t, "Module {#DEVICE_ID}: offline alarm", mo_key, "powermeter.status",
                          by_dev + ".severity.module_offline.first()",
                          tags=mod_tags + [("alarm", "module_offline")],
                          description="Severity of powermeterd's module_offline alarm: "
                                      "0 none, 2 critical once the module has not "
                                      "answered for the rule's hold time."),
            severity_item(t, "Module {#DEVICE_ID}: stale data alarm", st_key, "powermeter.status",
                          by_dev + ".severity.stale.first()",
                          tags=mod_tags + [("alarm", "stale")],
                          description="Severity of powermeterd's stale alarm: the "
                                      "module has not been read for the rule's hold "
                                      "time (a stuck poller)."),
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
        ] + severity_triggers(t, mo_key, "Module {#DEVICE_ID} on {#PORT} address {#ADDRESS}: "
                              "offline alarm",
                              "powermeterd has not had an answer from the module for the "
                              "rule's hold time: its circuits and feeds lack readings.",
                              fresh_dep)
          + severity_triggers(t, st_key, "Module {#DEVICE_ID}: no readings attempted",
                              "powermeterd has not tried to read the module for the "
                              "rule's hold time: its poller is stuck.", fresh_dep),
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
    # ---- feeds --------------------------------------------------------------
    # Per phase (from powermeter zabbix feeds: {#FEED}, {#PHASE}, {#CAPACITY},
    # {#PARTNER}) and per feed (from powermeter zabbix status, as modules).
    # Feed names hold none of " \ / , = { } $ (config/feeds.c): safe in a
    # JSONPath literal and a quoted key parameter.
    phase_args = '["{#FEED}",{#PHASE}]'
    by_phase = '$.feed_phases[?(@.feed == "{#FEED}" && @.phase == "{#PHASE}")]'
    phase_tags = [("component", "feed"), ("feed", "{#FEED}"), ("phase", "{#PHASE}")]
    fl_key = "powermeter.alarm.feed_load" + phase_args
    rd_key = "powermeter.alarm.redundancy" + phase_args
    load_key = "powermeter.feed.load" + phase_args
    cur_phase_key = "powermeter.feed.current" + phase_args
    lower = (" A lower bound while a circuit of the phase lacks a reading (item "
             "'circuits without a reading').")

    def phase_figure(name, what, units, value_type, description):
        return dependent(t, "prototype", "Feed {#FEED} {#PHASE}: " + name,
                         "powermeter.feed.%s%s" % (what, phase_args), "powermeter.status",
                         "%s.%s.first()" % (by_phase, what), value_type=value_type,
                         units=units, discard=True, numeric=True, tags=phase_tags,
                         extra={"description": description})
    phases_rule = {
        "uuid": uuid_for(t, "lld", "powermeter.feed.phases"),
        "name": "Feed phases",
        "type": "DEPENDENT",
        "key": "powermeter.feed.phases",
        "delay": "0",
        "lifetime": "30d",
        "description": "One entry per phase of every configured feed (\"feeds\" in "
                       "powermeter.json(5)): {#FEED}, {#PHASE}, {#CAPACITY} (A per "
                       "phase), {#PARTNER} (the other feed of a 2N pair, empty "
                       "when none).",
        "item_prototypes": [
            phase_figure("load", "load", "%", "FLOAT",
                         "The phase's current in % of the feed's capacity "
                         "({#CAPACITY} A)." + lower),
            phase_figure("current", "current", "A", "FLOAT",
                         "The sum of the currents of the feed's circuits on the "
                         "phase." + lower),
            phase_figure("power (estimated)", "power", "W", "FLOAT",
                         "The sum of the circuits' estimated power. " + ESTIMATE),
            phase_figure("redundant load", "redundant_load", "%", "FLOAT",
                         "This phase of the feed and of {#PARTNER} together, in % of "
                         "the smaller capacity: above 100 %, losing either feed "
                         "overloads the other. No value without a partner."),
            phase_figure("circuits without a reading", "missing", None, None,
                         "Circuits of the phase without a reading this tick (a "
                         "module down): load and current are then lower bounds."),
            severity_item(t, "Feed {#FEED} {#PHASE}: load alarm", fl_key,
                          "powermeter.status", by_phase + ".severity.feed_load.first()",
                          tags=phase_tags + [("alarm", "feed_load")],
                          description="Severity of powermeterd's feed_load alarm of the "
                                      "phase (% of capacity): 0 none, 1 warning, "
                                      "2 critical."),
            severity_item(t, "Feed {#FEED} {#PHASE}: redundancy alarm", rd_key,
                          "powermeter.status", by_phase + ".severity.redundancy.first()",
                          tags=phase_tags + [("alarm", "redundancy")],
                          description="Severity of powermeterd's redundancy alarm of "
                                      "the pair {#FEED} and {#PARTNER} on this phase: "
                                      "0 none (or no partner), 1 warning, 2 critical."),
        ],
        "trigger_prototypes":
            severity_triggers(t, fl_key, "Feed {#FEED} {#PHASE}: load near its capacity",
                              "The phase carries too much of the feed's {#CAPACITY} A.",
                              fresh_dep)
            + severity_triggers(t, rd_key, "Feed {#FEED} {#PHASE}: redundancy with "
                                "{#PARTNER} lost",
                                "{#FEED} and {#PARTNER} together carry more on this "
                                "phase than one of them could carry alone: losing "
                                "either overloads the other.", fresh_dep),
        "graph_prototypes": [
            {"uuid": uuid_for(t, "graph", "feed phase load"),
             "name": "Feed {#FEED} {#PHASE}: load",
             "graph_items": [
                 {"color": "1A7C11", "item": {"host": t, "key": load_key}},
                 {"sortorder": "1", "color": "F63100",
                  "item": {"host": t, "key": "powermeter.feed.redundant_load" + phase_args}},
             ]},
        ],
        "master_item": {"key": "powermeter.feeds"},
    }

    feed_args = '["{#FEED}"]'
    by_feed = '$.feeds[?(@.feed == "{#FEED}")]'
    feed_tags = [("component", "feed"), ("feed", "{#FEED}")]
    im_key = "powermeter.alarm.imbalance" + feed_args

    def feed_figure(name, key, what, units, description):
        return dependent(t, "prototype", "Feed {#FEED}: " + name, key + feed_args,
                         "powermeter.status", "%s.%s.first()" % (by_feed, what),
                         value_type="FLOAT", units=units, discard=True, numeric=True,
                         tags=feed_tags, extra={"description": description})
    feeds_rule = {
        "uuid": uuid_for(t, "lld", "powermeter.feed.totals"),
        "name": "Feeds",
        "type": "DEPENDENT",
        "key": "powermeter.feed.totals",
        "delay": "0",
        "lifetime": "30d",
        "description": "One entry per configured feed, from powermeter zabbix status: "
                       "totals, imbalance between its phases and the neutral estimate.",
        "item_prototypes": [
            feed_figure("current", "powermeter.feed.current.total", "current", "A",
                        "The sum over all the feed's phases." + lower),
            feed_figure("power (estimated)", "powermeter.feed.power.total", "power", "W",
                        "The sum over all the feed's phases. " + ESTIMATE),
            feed_figure("imbalance", "powermeter.feed.imbalance", "imbalance", "%",
                        "The largest deviation of a phase current from the mean of "
                        "the phases, in % of the mean (NEMA). No value while a "
                        "circuit lacks a reading or nothing is drawn."),
            feed_figure("neutral current (estimated)", "powermeter.feed.neutral", "neutral",
                        "A", "The vector sum of the phase currents, assuming the same "
                             "power factor on every phase and no harmonics: an "
                             "estimate; harmonics of switched-mode supplies add to it."),
            severity_item(t, "Feed {#FEED}: imbalance alarm", im_key, "powermeter.status",
                          by_feed + ".severity.imbalance.first()",
                          tags=feed_tags + [("alarm", "imbalance")],
                          description="Severity of powermeterd's imbalance alarm of the "
                                      "feed: 0 none, 1 warning, 2 critical."),
        ],
        "trigger_prototypes":
            severity_triggers(t, im_key, "Feed {#FEED}: phases out of balance",
                              "The load is spread unevenly over the feed's phases: "
                              "one phase reaches its limit early and the neutral "
                              "carries more.", fresh_dep),
        "master_item": {"key": "powermeter.status"},
        "lld_macro_paths": [
            {"lld_macro": "{#CAPACITY}", "path": "$.capacity"},
            {"lld_macro": "{#FEED}", "path": "$.feed"},
            {"lld_macro": "{#PARTNER}", "path": "$.partner"},
        ],
        "preprocessing": [{"type": "JSONPATH", "parameters": ["$.feeds"]}],
    }
    rules = [inputs_rule, modules_rule, phases_rule, feeds_rule]
    if version == "7.0":
        for rule in rules:
            lifetime_7_0(rule)

    return {
        "uuid": uuid_for(t, "template"),
        "template": t,
        "name": t,
        "description": DESCRIPTION % checks,
        "groups": [{"name": GROUP}],
        "items": items,
        "discovery_rules": rules,
        "tags": [{"tag": "class", "value": "power"}, {"tag": "target", "value": "hdhk"}],
        "macros": [{"macro": m, "value": v, "description": d} for m, v, d in MACROS],
        "valuemaps": [{
            "uuid": uuid_for(t, "valuemap", VALUEMAP),
            "name": VALUEMAP,
            "mappings": [{"value": "0", "newvalue": "Down"}, {"value": "1", "newvalue": "Up"}],
        }, {
            "uuid": uuid_for(t, "valuemap", SEVERITY_MAP),
            "name": SEVERITY_MAP,
            "mappings": [{"value": "0", "newvalue": "OK"},
                         {"value": "1", "newvalue": "Warning"},
                         {"value": "2", "newvalue": "Critical"}],
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
