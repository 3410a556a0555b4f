"""The Zabbix templates (config/zabbix/*.yaml): import-valid structure for
Zabbix 6.0 and 7.0, valid version 4 UUIDs shared by both files, dependent
items whose masters exist, every macro with a default, trigger expressions
that name existing items, and JSONPath steps that pick the right numbers out
of what powermeter(1) really prints (read from hdhk-sim).

Standard library only: the files are read by the small YAML reader below
(the subset Zabbix exports use); when PyYAML is installed it must agree.
zabbix.py imports load_yaml() and jsonpath() from here.
"""
import json
import os
import re
import subprocess
import sys
import unittest

import common
from daemonlib import Daemon, daemon_config, RATIO
from sim import Sim

ZDIR = os.path.join(common.SOURCE, "config", "zabbix")
FILES = {"6.0": os.path.join(ZDIR, "zabbix_powermeter_template_6_0.yaml"),
         "7.0": os.path.join(ZDIR, "zabbix_powermeter_template_7_0.yaml")}
SEED_TEMPLATE = os.path.join(common.SOURCE, "tests", "data", "seed", "zabbix-template-7.0.yaml")

# ---- a YAML reader for Zabbix exports ----------------------------------------
# Block mappings and sequences by indentation, plain, 'single' and "double"
# quoted scalars. Anything else (flow collections, block scalars, anchors)
# raises, so a template using it fails here rather than being misread.


class YamlError(Exception):
    pass


def _scalar(text, lineno):
    if text.startswith("'"):
        if not text.endswith("'") or len(text) < 2:
            raise YamlError("line %d: unterminated quote" % lineno)
        body = text[1:-1]
        if re.search(r"(?<!')'(?!')", body.replace("''", "")):
            raise YamlError("line %d: stray quote" % lineno)
        return body.replace("''", "'")
    if text.startswith('"'):
        return json.loads(text)
    if text[0] in "[{|>&*!%@`" or " #" in text:
        raise YamlError("line %d: unsupported YAML: %s" % (lineno, text))
    if re.fullmatch(r"[-+]?[0-9]+", text):
        return int(text)
    if text in ("true", "false"):
        return text == "true"
    if text in ("null", "~"):
        return None
    return text


def _split_key(text, lineno):
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*):(?: (.*))?$", text)
    if not m:
        raise YamlError("line %d: expected 'key: value', got %r" % (lineno, text))
    return m.group(1), (m.group(2) or "").strip()


def load_yaml(text):
    lines = []
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if "\t" in raw[:len(raw) - len(raw.lstrip())]:
            raise YamlError("line %d: tab in indentation" % n)
        lines.append([len(raw) - len(raw.lstrip(" ")), raw.strip(), n])

    def block(i, indent):
        if lines[i][1].startswith("- ") or lines[i][1] == "-":
            return sequence(i, indent)
        return mapping(i, indent)

    def value_after(i, indent, rest, lineno):
        if rest:
            return _scalar(rest, lineno), i + 1
        if i + 1 < len(lines) and lines[i + 1][0] > indent:
            return block(i + 1, lines[i + 1][0])
        if i + 1 < len(lines) and lines[i + 1][0] == indent and lines[i + 1][1].startswith("- "):
            return sequence(i + 1, indent)
        return None, i + 1

    def mapping(i, indent):
        out = {}
        while i < len(lines) and lines[i][0] == indent and not lines[i][1].startswith("- "):
            key, rest = _split_key(lines[i][1], lines[i][2])
            if key in out:
                raise YamlError("line %d: duplicate key %s" % (lines[i][2], key))
            out[key], i = value_after(i, indent, rest, lines[i][2])
        if i < len(lines) and lines[i][0] > indent:
            raise YamlError("line %d: bad indentation" % lines[i][2])
        return out, i

    def sequence(i, indent):
        out = []
        while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("-"):
            rest = lines[i][1][1:].strip()
            if not rest:
                v, i = block(i + 1, lines[i + 1][0])
            elif re.match(r"[A-Za-z_][A-Za-z0-9_]*:( |$)", rest):
                # "- key: value" opens a mapping indented past the dash
                lines[i] = [indent + 2, rest, lines[i][2]]
                v, i = mapping(i, indent + 2)
            else:
                v, i = _scalar(rest, lines[i][2]), i + 1
            out.append(v)
        return out, i

    if not lines:
        return None
    doc, end = block(0, lines[0][0])
    if end != len(lines):
        raise YamlError("line %d: unexpected content" % lines[end][2])
    return doc


# ---- the JSONPath subset the templates use, with Zabbix's semantics -------------
# $.a.b, $[?(@.x == 1 && @.y == "s")], $..[?(...)], .first() .sum() .max()
# .min() .avg() .length(); the result is the text Zabbix would store.

class JsonPathError(Exception):
    pass


_FUNCS = ("first", "sum", "max", "min", "avg", "length")


def _cond(expr):
    tests = []
    for part in expr.split("&&"):
        m = re.fullmatch(r'\s*@\.([A-Za-z_][A-Za-z0-9_]*)\s*==\s*("(?:[^"\\]|\\.)*"|-?[0-9.]+)\s*',
                         part)
        if not m:
            raise JsonPathError("unsupported filter %r" % part)
        lit = json.loads(m.group(2))
        tests.append((m.group(1), lit))

    def ok(node):
        if not isinstance(node, dict):
            return False
        for field, lit in tests:
            if field not in node:
                return False
            v = node[field]
            # Zabbix compares a number with a number, anything else as text
            if isinstance(lit, str) or isinstance(v, str):
                if str(v) != str(lit):
                    return False
            elif v != lit:
                return False
        return True
    return ok


def _descend(node):
    yield node
    if isinstance(node, dict):
        for v in node.values():
            yield from _descend(v)
    elif isinstance(node, list):
        for v in node:
            yield from _descend(v)


def _text(v):
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if isinstance(v, float) else str(v)
    return json.dumps(v, separators=(",", ":"))


def jsonpath(path, doc):
    """What Zabbix's JSONPATH preprocessing step gives: the text of the
    value. Raises JsonPathError where Zabbix fails the step."""
    if isinstance(doc, (str, bytes)):
        try:
            doc = json.loads(doc)
        except ValueError as e:
            raise JsonPathError("not JSON: %s" % e)
    if not path.startswith("$"):
        raise JsonPathError("must start with $")
    rest = path[1:]
    nodes, definite = [doc], True
    while rest:
        m = re.match(r"\.(%s)\(\)" % "|".join(_FUNCS), rest)
        if m:
            if rest[m.end():]:
                raise JsonPathError("a function must come last")
            f = m.group(1)
            if f == "length":
                seq = nodes[0] if definite and isinstance(nodes[0], list) else nodes
                return str(len(seq))
            vals = nodes[0] if definite and isinstance(nodes[0], list) else nodes
            if not vals:
                raise JsonPathError("%s() of nothing" % f)
            if f == "first":
                return _text(vals[0])
            try:
                nums = [float(v) for v in vals]
            except (TypeError, ValueError):
                raise JsonPathError("%s() of non-numbers" % f)
            r = {"sum": sum, "max": max, "min": min,
                 "avg": lambda x: sum(x) / len(x)}[f](nums)
            return _text(r)
        m = re.match(r"(\.\.)?\[\?\((.*?)\)\]", rest)
        if m:
            ok = _cond(m.group(2))
            out = []
            for n in nodes:
                pool = list(_descend(n)) if m.group(1) else [n]
                for p in pool:
                    if isinstance(p, list):
                        out.extend(x for x in p if ok(x))
            nodes, definite = out, False
            rest = rest[m.end():]
            continue
        m = re.match(r"\.([A-Za-z_][A-Za-z0-9_]*)", rest)
        if m:
            k = m.group(1)
            nodes = [n[k] for n in nodes if isinstance(n, dict) and k in n]
            rest = rest[m.end():]
            continue
        m = re.match(r"\[\*\]", rest)
        if m:
            out = []
            for n in nodes:
                if isinstance(n, list):
                    out.extend(n)
            nodes, definite = out, False
            rest = rest[m.end():]
            continue
        raise JsonPathError("unsupported JSONPath at %r" % rest)
    if definite:
        if not nodes:
            raise JsonPathError("no data at %s" % path)
        return _text(nodes[0])
    if not nodes:
        raise JsonPathError("no data at %s" % path)
    return _text(nodes)


def preprocess(steps, value):
    """What Zabbix makes of 'value' through an item's preprocessing 'steps'
    (JSONPATH, MATCHES_REGEX): the text, or None when a step fails and its
    error handler discards the value. Raises JsonPathError where the item
    would become unsupported."""
    for step in steps:
        try:
            if step["type"] == "JSONPATH":
                value = jsonpath(step["parameters"][0], value)
            elif step["type"] == "MATCHES_REGEX":
                if not re.search(step["parameters"][0], value):
                    raise JsonPathError("%r does not match %s" % (value, step["parameters"][0]))
            else:
                raise AssertionError("preprocessing step %s not evaluated here" % step["type"])
        except JsonPathError:
            if step.get("error_handler") == "DISCARD_VALUE":
                return None
            raise
    return value


def substitute(text, macros):
    """LLD macros {#X} replaced from 'macros' (a dict of discovery row);
    unknown ones are left as they are."""
    return re.sub(r"\{#[A-Z0-9_.]+\}", lambda m: _text(macros[m.group(0)])
                  if m.group(0) in macros else m.group(0), text)


# ---- walking a template --------------------------------------------------------

UUID_V4 = re.compile(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}\Z")


def load(version):
    with open(FILES[version]) as f:
        return load_yaml(f.read())


def uuids(node, ident=()):
    """(identity, uuid) of every entity with a uuid; the identity is the
    chain of collection names and keys/names, the same in both versions."""
    out = []
    if isinstance(node, dict):
        here = ident
        if "uuid" in node:
            label = node.get("key") or node.get("expression") or node.get("template") \
                or node.get("name")
            here = ident + (label,)
            out.append((here, node["uuid"]))
        for k, v in node.items():
            # 6.0 "groups" and 7.0 "template_groups" are one thing
            kk = "groups" if k == "template_groups" else k
            out += uuids(v, here + (kk,))
    elif isinstance(node, list):
        for v in node:
            out += uuids(v, ident)
    return out


def all_strings(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from all_strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from all_strings(v)
    elif isinstance(node, str):
        yield node


def item_refs(expression):
    """(template, key) of every /host/key in a trigger expression."""
    return re.findall(r"\(/([^/]+)/((?:[^,()\[]|\[[^\]]*\])+)", expression)


def sample_config(testcase, sim):
    """A config for two simulated modules; names with quotes and non-ASCII."""
    d = common.tmpdir(testcase)
    cfg = {"interval": 1,
           "runtime_directory": d,
           "snapshot": os.path.join(d, "values.json"),
           "devices": [
               {"id": 1, "port": sim.path(), "address": 1, "timeout": 0.5,
                "inputs": [{"input": "a", "ratio": 0.01, "name": "Input a"},
                           {"input": "c", "ratio": 0.03, "name": "Heat \"pump\" \u00e9"}]},
               {"id": 5, "port": sim.path(), "address": 2, "timeout": 0.5,
                "inputs": [{"input": "p", "ratio": 0.02, "name": "Pitch 5"}]}]}
    path = os.path.join(d, "powermeter.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


# ---- circuits with power estimates -------------------------------------------
# daemon_config()'s modules 1 and 2, inputs a..d, with the file's, devices'
# and inputs' voltage, power factor, phase, breaker and tags (zabbix.py and
# grafana.py use them too).

FILE_TAGS = {"site": "dc1"}
CIRCUITS = {
    (1, "a"): {"phase": "L1", "breaker": 16, "tags": {"customer": "ACME", "rack": "B07"}},
    (1, "b"): {"phase": "L2", "power_factor": 0.8, "tags": {"customer": "ACME"}},
    (1, "c"): {"phase": "L3", "voltage": 400, "tags": {"customer": "Beta"}},
    (2, "a"): {"phase": "L1", "tags": {"customer": "Beta", "site": "hall 2"}},
    (2, "c"): {"phase": "L1", "power_factor": 0.5},
}
DEVICE_VOLTAGE = {2: 120}


def power_config(testcase, sim, persist=1, **kw):
    """daemon_config() with CIRCUITS, FILE_TAGS and DEVICE_VOLTAGE applied
    and the energy counters saved every 'persist' seconds."""
    extra = dict(kw.pop("extra", None) or {})
    extra.update({"tags": FILE_TAGS, "energy": {"persist_interval": persist}})
    path = daemon_config(testcase, sim, extra=extra, **kw)
    with open(path) as f:
        cfg = json.load(f)
    for dev in cfg["devices"]:
        if dev["id"] in DEVICE_VOLTAGE:
            dev["voltage"] = DEVICE_VOLTAGE[dev["id"]]
        for inp in dev["inputs"]:
            inp.update(CIRCUITS.get((dev["id"], inp["input"]), {}))
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    return path


def circuit(device_id, letter):
    """What CIRCUITS make of a circuit: voltage, power_factor, phase (or
    None), breaker (or None) and tags (the file's and its own)."""
    c = CIRCUITS.get((device_id, letter), {})
    tags = dict(FILE_TAGS)
    tags.update(c.get("tags", {}))
    return {"voltage": float(c.get("voltage", DEVICE_VOLTAGE.get(device_id, 230))),
            "power_factor": float(c.get("power_factor", 1)),
            "phase": c.get("phase"),
            "breaker": float(c["breaker"]) if "breaker" in c else None,
            "tags": tags}


def amps(address, letter):
    """The current hdhk-sim gives by default, as the daemon computes it."""
    return Sim.default_raw(address, ord(letter) - ord("a")) * RATIO


def watts(device_id, letter, address=None):
    c = circuit(device_id, letter)
    return amps(address or device_id, letter) * c["voltage"] * c["power_factor"]


def powermeter(*args):
    p = common.run([common.POWERMETER] + list(args))
    return p


class Templates(unittest.TestCase):
    def setUp(self):
        self.docs = {v: load(v) for v in FILES}

    def templates(self, version):
        return self.docs[version]["zabbix_export"]["templates"]

    def test_generator_output_is_committed(self):
        """The files are exactly what gen_templates.py writes."""
        out = common.tmpdir(self)
        common.run([sys.executable, os.path.join(ZDIR, "gen_templates.py"), out], check=True)
        for version, path in FILES.items():
            with open(path) as a, open(os.path.join(out, os.path.basename(path))) as b:
                self.assertEqual(a.read(), b.read(), "%s is not what gen_templates.py writes"
                                 % os.path.basename(path))

    def test_reader_agrees_with_pyyaml(self):
        try:
            import yaml
        except ImportError:
            if common.IN_CI:
                raise AssertionError("python3-yaml missing in CI")
            raise unittest.SkipTest("python3-yaml not installed")
        paths = list(FILES.values()) + [SEED_TEMPLATE]
        for path in paths:
            with open(path) as f:
                text = f.read()
            self.assertEqual(load_yaml(text), yaml.safe_load(text), path)

    def test_reader_refuses_what_it_cannot_read(self):
        for bad in ("a: [1, 2]\n", "a: |\n  x\n", "a: 'x\n", "a: 1\na: 2\n", "a:\n   b: 1\n  c: 2\n"):
            with self.assertRaises((YamlError, ValueError), msg=bad):
                load_yaml(bad)

    def test_versions_and_groups(self):
        e6 = self.docs["6.0"]["zabbix_export"]
        e7 = self.docs["7.0"]["zabbix_export"]
        self.assertEqual(e6["version"], "6.0")
        self.assertEqual(e7["version"], "7.0")
        # 6.0 names the template groups "groups", 6.2 and later "template_groups"
        self.assertIn("groups", e6)
        self.assertNotIn("template_groups", e6)
        self.assertIn("template_groups", e7)
        self.assertNotIn("groups", e7)
        for e, key in ((e6, "groups"), (e7, "template_groups")):
            names = {g["name"] for g in e[key]}
            for t in e["templates"]:
                for g in t["groups"]:
                    self.assertIn(g["name"], names)
        for t in e7["templates"]:
            for rule in t["discovery_rules"]:
                self.assertEqual(rule["enabled_lifetime_type"], "DISABLE_NEVER")
        for t in e6["templates"]:
            for rule in t["discovery_rules"]:
                self.assertNotIn("enabled_lifetime_type", rule)   # 7.0 only
        names = [t["template"] for t in e6["templates"]]
        self.assertEqual(names, [t["template"] for t in e7["templates"]])
        self.assertEqual(len(names), 2)
        # not the seed's names: importing ours must not overwrite the seed's
        self.assertNotIn("Powermeter by Zabbix agent", names)

    def test_uuids(self):
        per_version = {}
        for v in FILES:
            found = uuids(self.docs[v])
            self.assertGreater(len(found), 20)
            for ident, u in found:
                self.assertIsInstance(u, str, ident)
                self.assertRegex(u, UUID_V4, "%s: %s is not a v4 UUID" % (ident, u))
            all_u = [u for _, u in found]
            self.assertEqual(len(all_u), len(set(all_u)), "duplicate UUIDs in %s" % v)
            idents = [i for i, _ in found]
            self.assertEqual(len(idents), len(set(idents)))
            per_version[v] = dict(found)
        self.assertEqual(per_version["6.0"], per_version["7.0"])

    def test_masters_and_dependents(self):
        for v in FILES:
            for t in self.templates(v):
                items = {i["key"]: i for i in t["items"]}
                masters = [i for i in t["items"] if i["key"] == "powermeter.json"]
                self.assertEqual(len(masters), 1)
                m = masters[0]
                self.assertEqual(m["value_type"], "TEXT")
                self.assertNotIn(m.get("type"), ("DEPENDENT",))
                self.assertEqual(m.get("type", "ZABBIX_PASSIVE"),
                                 "ZABBIX_ACTIVE" if t["template"].endswith("active")
                                 else "ZABBIX_PASSIVE")
                checked = 0
                for it in t["items"]:
                    if it.get("type") == "DEPENDENT":
                        self.assertIn(it["master_item"]["key"], items, it["key"])
                        self.assertNotEqual(items[it["master_item"]["key"]].get("type"),
                                            "DEPENDENT")
                        self.assertEqual(it["preprocessing"][0]["type"], "JSONPATH")
                        checked += 1
                for rule in t["discovery_rules"]:
                    self.assertEqual(rule["type"], "DEPENDENT")
                    self.assertIn(rule["master_item"]["key"], items)
                    protos = {p["key"] for p in rule["item_prototypes"]}
                    for p in rule["item_prototypes"]:
                        self.assertEqual(p["type"], "DEPENDENT", p["key"])
                        mk = p["master_item"]["key"]
                        self.assertTrue(mk in items or mk in protos, p["key"])
                        self.assertEqual(p["preprocessing"][0]["type"], "JSONPATH")
                        checked += 1
                self.assertGreaterEqual(checked, 9)

    def rule(self, t, key):
        rules = [r for r in t["discovery_rules"] if r["key"] == key]
        self.assertEqual(len(rules), 1, key)
        return rules[0]

    def test_inputs_rule(self):
        for v in FILES:
            for t in self.templates(v):
                rule = self.rule(t, "powermeter.inputs")
                self.assertEqual(rule["master_item"]["key"], "powermeter.discovery")
                cur = [p for p in rule["item_prototypes"]
                       if p["key"] == "powermeter.current[{#KEY}]"]
                self.assertEqual(len(cur), 1)
                self.assertEqual(cur[0]["value_type"], "FLOAT")
                self.assertEqual(cur[0]["units"], "A")
                self.assertEqual(cur[0]["master_item"]["key"], "powermeter.json")
                over = [tp for tp in rule["trigger_prototypes"]
                        if '{$POWERMETER.CURRENT.MAX:"{#KEY}"}' in tp["expression"]]
                self.assertEqual(len(over), 1)
                self.assertIn("/%s/powermeter.current[{#KEY}]" % t["template"],
                              over[0]["expression"])
                self.assertIn(over[0]["priority"], ("HIGH", "DISASTER"))

    def test_modules_rule(self):
        for v in FILES:
            for t in self.templates(v):
                rule = self.rule(t, "powermeter.modules")
                exprs = [tp["expression"] for tp in rule["trigger_prototypes"]]
                self.assertTrue(any(re.fullmatch(r"last\(/[^)]*/powermeter\.module\.up"
                                                 r"\[\{#DEVICE_ID\}\]\)=0", e) for e in exprs),
                                "no module offline trigger")
                self.assertTrue(any(e.startswith("nodata(") for e in exprs),
                                "no stale data trigger")
                protos = {p["key"] for p in rule["item_prototypes"]}
                graphs = rule["graph_prototypes"]
                self.assertEqual(len(graphs), 1)
                self.assertIn("{#DEVICE_ID}", graphs[0]["name"])
                for gi in graphs[0]["graph_items"]:
                    self.assertEqual(gi["item"]["host"], t["template"])
                    self.assertIn(gi["item"]["key"], protos)
                    self.assertIn("{#DEVICE_ID}", gi["item"]["key"])
                    self.assertRegex(gi["color"], r"\A[0-9A-F]{6}\Z")
                paths = {m["lld_macro"]: m["path"] for m in rule["lld_macro_paths"]}
                self.assertEqual(paths["{#DEVICE_ID}"], "$.device_id")

    def test_macros_have_defaults(self):
        for v in FILES:
            for t in self.templates(v):
                defined = {m["macro"]: m["value"] for m in t["macros"]}
                for name, value in defined.items():
                    self.assertRegex(name, r"\A\{\$[A-Z0-9_.]+\}\Z")
                    self.assertNotEqual(value, "")
                used = set()
                for s in all_strings(t):
                    for m in re.finditer(r"\{\$([A-Z0-9_.]+)(?::[^}]*)?\}", s):
                        used.add("{$%s}" % m.group(1))
                self.assertIn("{$POWERMETER.CURRENT.MAX}", used)
                self.assertEqual(sorted(used - set(defined)), [], "macros without a default")
                self.assertEqual(defined["{$POWERMETER.CURRENT.MAX}"], "16")

    def test_trigger_expressions_name_existing_items(self):
        for v in FILES:
            for t in self.templates(v):
                items = {i["key"] for i in t["items"]}
                triggers = {(tr["name"], tr["expression"]) for i in t["items"]
                            for tr in i.get("triggers", [])}
                self.assertTrue(triggers)
                for i in t["items"]:
                    for tr in i.get("triggers", []):
                        refs = item_refs(tr["expression"])
                        self.assertTrue(refs, tr["expression"])
                        for host, key in refs:
                            self.assertEqual(host, t["template"])
                            self.assertIn(key, items)
                        self.assertIn(i["key"], [k for _, k in refs])
                for rule in t["discovery_rules"]:
                    protos = {p["key"] for p in rule["item_prototypes"]}
                    local = {(tp["name"], tp["expression"])
                             for tp in rule.get("trigger_prototypes", [])}
                    for tp in rule.get("trigger_prototypes", []):
                        refs = item_refs(tp["expression"])
                        self.assertTrue(refs, tp["expression"])
                        self.assertTrue(any(k in protos for _, k in refs),
                                        "a trigger prototype must use an item prototype")
                        for host, key in refs:
                            self.assertEqual(host, t["template"])
                            self.assertIn(key, protos | items)
                        for dep in tp.get("dependencies", []):
                            self.assertIn((dep["name"], dep["expression"]), local | triggers)
                        self.assertIn(tp["priority"], ("INFO", "WARNING", "AVERAGE",
                                                       "HIGH", "DISASTER"))

    def test_valuemaps(self):
        for v in FILES:
            for t in self.templates(v):
                names = {vm["name"] for vm in t["valuemaps"]}
                for s in [t["items"]] + [r["item_prototypes"] for r in t["discovery_rules"]]:
                    for it in s:
                        if "valuemap" in it:
                            self.assertIn(it["valuemap"]["name"], names)

    def test_jsonpaths_pick_the_right_values(self):
        """Every JSONPath step, with the LLD macros of each discovered row,
        run on what powermeter prints for two simulated modules: the right
        circuit's current, the module's sum, its health."""
        sim = Sim.single(self, n_modules=2)
        cfg = sample_config(self, sim)
        values = powermeter("json", "-c", cfg)
        self.assertEqual(values.returncode, 0, values.stderr)
        status = powermeter("zabbix", "status", "-c", cfg)
        self.assertEqual(status.returncode, 0, status.stderr)
        disc = powermeter("zabbix", "discovery", "-c", cfg)
        self.assertEqual(disc.returncode, 0, disc.stderr)
        rows = json.loads(disc.stdout)
        arr = json.loads(values.stdout)
        st = json.loads(status.stdout)
        # no daemon: circuits come only from its snapshot, so nothing at all
        circuits = powermeter("zabbix", "circuits", "-c", cfg)
        self.assertEqual((circuits.returncode, circuits.stdout), (1, ""))
        masters = {"powermeter.json": values.stdout, "powermeter.status": status.stdout,
                   "powermeter.discovery": disc.stdout, "powermeter.circuits": ""}
        expect_cur = {(1, "a"): round(Sim.default_raw(1, 0) * 0.01, 2),
                      (1, "c"): round(Sim.default_raw(1, 2) * 0.03, 2),
                      (5, "p"): round(Sim.default_raw(2, 15) * 0.02, 2)}
        self.assertEqual({(v["device_id"], v["input"]): v["current"] for v in arr}, expect_cur)
        for v in FILES:
            for t in self.templates(v):
                for it in t["items"]:
                    if it.get("type") == "DEPENDENT":
                        got = jsonpath(it["preprocessing"][0]["parameters"][0],
                                       masters[it["master_item"]["key"]])
                        want = {"powermeter.snapshot.fresh": "0",
                                "powermeter.snapshot.age": "-1"}.get(it["key"])
                        if want is not None:
                            self.assertEqual(got, want, it["key"])
                inputs = self.rule(t, "powermeter.inputs")
                self.assertEqual(len(rows), 3)
                for row in rows:
                    for p in inputs["item_prototypes"]:
                        path = substitute(p["preprocessing"][0]["parameters"][0], row)
                        self.assertNotIn("{#", path)
                        if p["master_item"]["key"] == "powermeter.circuits":
                            # nothing known: discarded, not an unsupported item
                            steps = [dict(st, parameters=[substitute(x, row)
                                                          for x in st["parameters"]])
                                     for st in p["preprocessing"]]
                            self.assertIsNone(preprocess(steps, ""), p["key"])
                            continue
                        if p["key"].startswith("powermeter.alarm."):
                            # no daemon: its judgement unknown (null, discarded)
                            self.assertEqual(jsonpath(path, status.stdout), "null")
                            continue
                        got = jsonpath(path, masters[p["master_item"]["key"]])
                        self.assertEqual(float(got),
                                         expect_cur[(row["{#DEVICE_ID}"], row["{#INPUT}"])])
                    for s in all_strings(inputs):
                        for m in re.findall(r"\{#[A-Z_]+\}", s):
                            self.assertIn(m, row, "LLD macro %s is not discovered" % m)
                modules = self.rule(t, "powermeter.modules")
                mrows = json.loads(jsonpath(modules["preprocessing"][0]["parameters"][0],
                                            status.stdout))
                self.assertEqual([r["device_id"] for r in mrows], [1, 5])
                for r in mrows:
                    macros = {m["lld_macro"]: jsonpath(m["path"], r)
                              for m in modules["lld_macro_paths"]}
                    for s in all_strings(modules):
                        for m in re.findall(r"\{#[A-Z_]+\}", s):
                            self.assertIn(m, macros, "LLD macro %s has no path" % m)
                    dev = int(macros["{#DEVICE_ID}"])
                    mine = [c for (d, _), c in expect_cur.items() if d == dev]
                    for p in modules["item_prototypes"]:
                        path = substitute(p["preprocessing"][0]["parameters"][0], macros)
                        got = jsonpath(path, masters[p["master_item"]["key"]])
                        k = p["key"].split("[")[0]
                        if k == "powermeter.module.current.total":
                            self.assertAlmostEqual(float(got), sum(mine), places=9)
                        elif k == "powermeter.module.current.max":
                            self.assertAlmostEqual(float(got), max(mine), places=9)
                        elif k == "powermeter.module.up":
                            self.assertEqual(got, "0")  # no daemon, nothing known up
                        elif k == "powermeter.module.error":
                            self.assertIn("no snapshot", got)
                        elif k.startswith("powermeter.alarm."):
                            self.assertEqual(got, "null")   # no daemon: unknown
                        else:
                            float(got)
        self.assertFalse(st["snapshot"]["fresh"])

    def prototype_steps(self, proto, row):
        """The prototype's preprocessing with the LLD macros of 'row'."""
        steps = [dict(st, parameters=[substitute(x, row) for x in st["parameters"]])
                 for st in proto["preprocessing"]]
        for st in steps:
            for x in st["parameters"]:
                self.assertNotIn("{#", x)
        return steps

    def test_power_and_energy_items(self):
        """powermeter.circuits and its power and energy prototypes: estimates
        that say so, W and Wh, a value the preprocessing discards (null:
        module down, energy not yet saved) rather than an unsupported item,
        the phase as an item tag."""
        for v in FILES:
            for t in self.templates(v):
                items = {i["key"]: i for i in t["items"]}
                m = items["powermeter.circuits"]
                self.assertEqual(m["value_type"], "TEXT")
                self.assertIn("estimate", m["description"])
                self.assertEqual(m.get("type", "ZABBIX_PASSIVE"),
                                 "ZABBIX_ACTIVE" if t["template"].endswith("active")
                                 else "ZABBIX_PASSIVE")
                rule = self.rule(t, "powermeter.inputs")
                self.assertIn("{#PHASE}", rule["description"])
                self.assertIn("{#TAG.", rule["description"])
                protos = {p["key"]: p for p in rule["item_prototypes"]}
                for key, units in (("powermeter.power[{#KEY}]", "W"),
                                   ("powermeter.energy[{#KEY}]", "Wh")):
                    p = protos[key]
                    self.assertEqual(p["master_item"]["key"], "powermeter.circuits")
                    self.assertEqual((p["value_type"], p["units"]), ("FLOAT", units))
                    self.assertIn("estimated", p["name"])
                    self.assertIn("voltage", p["description"])
                    self.assertIn("power factor", p["description"])
                    self.assertIn({"tag": "phase", "value": "{#PHASE}"}, p["tags"])
                    for st in p["preprocessing"]:
                        self.assertEqual(st["error_handler"], "DISCARD_VALUE")
                    doc = json.dumps({"circuits": [
                        {"key": "1.a", "power": None, "energy": None},
                        {"key": "1.b", "power": 12.5, "energy": 3.25}]})
                    self.assertIsNone(preprocess(self.prototype_steps(p, {"{#KEY}": "1.a"}),
                                                 doc))
                    self.assertIsNone(preprocess(self.prototype_steps(p, {"{#KEY}": "1.c"}),
                                                 doc))
                    self.assertIn(preprocess(self.prototype_steps(p, {"{#KEY}": "1.b"}), doc),
                                  ("12.5", "3.25"))
                self.assertIn("counter that only goes up",
                              protos["powermeter.energy[{#KEY}]"]["description"])

    def test_power_and_energy_from_the_daemon(self):
        """The prototypes on what powermeter zabbix circuits prints next to
        a running powermeterd, with the macros powermeter zabbix discovery
        gives: each circuit's power is amps x its voltage x power factor,
        its energy a positive counter; {#PHASE} and {#TAG.*} as configured."""
        sim = Sim.single(self, n_modules=2)
        cfg = power_config(self, sim)
        Daemon(self, cfg).start()

        def counted():
            p = powermeter("zabbix", "circuits", "-c", cfg)
            if p.returncode != 0:
                return None
            doc = json.loads(p.stdout)
            return p.stdout if all(c["energy"] for c in doc["circuits"]) else None
        text = common.wait_for(counted, 20, what="energy of every circuit in the snapshot")
        rows = json.loads(powermeter("zabbix", "discovery", "-c", cfg).stdout)
        self.assertEqual(len(rows), 8)
        for row in rows:
            c = circuit(row["{#DEVICE_ID}"], row["{#INPUT}"])
            self.assertEqual(row["{#PHASE}"], c["phase"] or "")
            tags = {k[len("{#TAG."):-1]: v for k, v in row.items() if k.startswith("{#TAG.")}
            self.assertEqual(tags, {k.upper(): v for k, v in c["tags"].items()})
        for v in FILES:
            for t in self.templates(v):
                rule = self.rule(t, "powermeter.inputs")
                protos = {p["key"].split("[")[0]: p for p in rule["item_prototypes"]}
                for row in rows:
                    dev, letter = row["{#DEVICE_ID}"], row["{#INPUT}"]
                    power = preprocess(self.prototype_steps(protos["powermeter.power"], row),
                                       text)
                    self.assertAlmostEqual(float(power), watts(dev, letter), delta=0.0501)
                    energy = preprocess(self.prototype_steps(protos["powermeter.energy"], row),
                                        text)
                    self.assertGreater(float(energy), 0)
                    for s in all_strings(rule):
                        for m in re.findall(r"\{#[A-Z_]+\}", s):
                            self.assertIn(m, row, "LLD macro %s is not discovered" % m)

    def test_jsonpath_evaluator(self):
        """The evaluator fails where Zabbix fails: a missing circuit is an
        error (the template discards it), not a zero."""
        doc = '[{"id": 0, "device_id": 1, "input": "a", "current": 1.5},' \
              ' {"id": 1, "device_id": 2, "input": "a", "current": 2.0}]'
        self.assertEqual(jsonpath('$[?(@.device_id == 2 && @.input == "a")].current.first()',
                                  doc), "2.0")
        self.assertEqual(jsonpath("$[?(@.device_id == 1)].current.sum()", doc), "1.5")
        self.assertEqual(jsonpath("$[*].current.max()", doc), "2.0")
        self.assertEqual(jsonpath("$.length()", doc), "2")
        with self.assertRaises(JsonPathError):
            jsonpath('$[?(@.device_id == 3 && @.input == "a")].current.first()', doc)
        with self.assertRaises(JsonPathError):
            jsonpath("$[?(@.device_id == 3)].current.sum()", doc)
        with self.assertRaises(JsonPathError):
            jsonpath("$.x", "")

    def test_seed_template_keys_still_served(self):
        """The seed's templates read powermeter.json with lld_macro_paths
        $.id, $.device_id, $.input, $.name: the key stays in the agent file
        and the output keeps those fields."""
        conf = os.path.join(ZDIR, "userparameter_powermeter.conf.in")
        with open(conf) as f:
            keys = re.findall(r"^UserParameter=([^,]+),", f.read(), re.M)
        self.assertEqual(keys, ["powermeter.json", "powermeter.discovery", "powermeter.feeds",
                                "powermeter.status", "powermeter.circuits"])
        with open(SEED_TEMPLATE) as f:
            seed = load_yaml(f.read())
        for t in seed["zabbix_export"]["templates"]:
            self.assertEqual(t["items"][0]["key"], "powermeter.json")
            paths = [m["path"] for r in t["discovery_rules"] for m in r["lld_macro_paths"]]
            self.assertEqual(sorted(paths), ["$.device_id", "$.id", "$.input", "$.name"])


if __name__ == "__main__":
    common.main()
