#!/usr/bin/env python3
"""Renders examples/kustomize/ and examples/helm/ the way kustomize and helm do,
for the little they use, and checks the committed rendered.yaml beside each.

kustomize and helm are not installable from this project's package registries, so
the rendered manifests are committed (and validated by scripts/validate-manifests.sh
with kubernetes-validate --strict); this script keeps them true to their sources:

  kustomize: a Component whose patches target kind Deployment: a strategic-merge
             patch (maps merge, lists of named items merge by name, the patch's own
             name is replaced by the target's) and a JSON 6902 patch (op add; "-"
             appends to a list).
  helm:      {{ .Values.x.y }}, {{ .Release.Name }}, `| quote`, `include "name" . |
             nindent N`, define/end blocks, {{/* comments */}} and the {{- -}}
             whitespace trimming. Anything else is an error, not a silent skip.

It also checks that both render the same Deployment: the two snippets describe one
pod spec. Needs PyYAML (a dependency of kubernetes-validate).

  scripts/render-examples.py           # check (exit 1 and a diff when out of date)
  scripts/render-examples.py --write   # rewrite the rendered.yaml files
"""
import copy
import difflib
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
KUSTOMIZE = ROOT / "examples" / "kustomize"
HELM = ROOT / "examples" / "helm"
RELEASE_NAME = "app"  # helm template app examples/helm
# helm's install order, for the kinds used here.
KIND_ORDER = ["ConfigMap", "Deployment"]


class RenderError(Exception):
    pass


def load_all(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


# --- kustomize -------------------------------------------------------------


def merge(dst, patch):
    """Strategic merge, for what pod specs need: lists of maps with a `name`
    merge by name; other lists are replaced."""
    if isinstance(dst, dict) and isinstance(patch, dict):
        out = dict(dst)
        for k, v in patch.items():
            out[k] = merge(dst[k], v) if k in dst else copy.deepcopy(v)
        return out
    if isinstance(dst, list) and isinstance(patch, list) and all(
        isinstance(i, dict) and "name" in i for i in dst + patch
    ):
        out = [copy.deepcopy(i) for i in dst]
        for item in patch:
            at = next((n for n, d in enumerate(out) if d["name"] == item["name"]), None)
            if at is None:
                out.append(copy.deepcopy(item))
            else:
                out[at] = merge(out[at], item)
        return out
    return copy.deepcopy(patch)


def json_patch(doc, ops):
    doc = copy.deepcopy(doc)
    for op in ops:
        if op.get("op") != "add":
            raise RenderError(f"unsupported JSON patch op {op.get('op')!r}")
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for p in parts[:-1]:
            try:
                parent = parent[int(p)] if isinstance(parent, list) else parent[p]
            except (KeyError, IndexError, ValueError) as e:
                raise RenderError(f"JSON patch path {op['path']}: no {p!r}") from e
        last, value = parts[-1], copy.deepcopy(op["value"])
        if isinstance(parent, list):
            parent.insert(len(parent) if last == "-" else int(last), value)
        else:
            parent[last] = value
    return doc


def render_kustomize(app_dir):
    kust = yaml.safe_load((app_dir / "kustomization.yaml").read_text())
    docs = [d for r in kust.get("resources", []) for d in load_all(app_dir / r)]
    for comp in kust.get("components", []):
        comp_dir = (app_dir / comp).resolve()
        ck = yaml.safe_load((comp_dir / "kustomization.yaml").read_text())
        if ck.get("kind") != "Component":
            raise RenderError(f"{comp_dir}: not a kustomize Component")
        for p in ck.get("patches", []):
            patch = yaml.safe_load((comp_dir / p["path"]).read_text())
            kind = p.get("target", {}).get("kind")
            for n, d in enumerate(docs):
                if kind and d.get("kind") != kind:
                    continue
                if isinstance(patch, list):
                    docs[n] = json_patch(d, patch)
                else:
                    smp = copy.deepcopy(patch)
                    smp.get("metadata", {}).pop("name", None)  # the target's name wins
                    docs[n] = merge(d, smp)
    return docs


# --- helm ------------------------------------------------------------------

ACTION = re.compile(r"\{\{(-?)(.*?)(-?)\}\}", re.S)


def tokens(text):
    """Text and actions, with {{- and -}} trimming applied to the text."""
    out, pos, trim_next = [], 0, False
    for m in ACTION.finditer(text):
        chunk = text[pos : m.start()]
        if trim_next:
            chunk = chunk.lstrip()
        if m.group(1) == "-" and m.group(2)[:1].isspace():
            chunk = chunk.rstrip()
        out.append(("text", chunk))
        out.append(("action", m.group(2).strip()))
        trim_next = m.group(3) == "-" and m.group(2)[-1:].isspace()
        pos = m.end()
    chunk = text[pos:]
    out.append(("text", chunk.lstrip() if trim_next else chunk))
    return out


def value(expr, ctx):
    if expr == ".Release.Name":
        return RELEASE_NAME
    if expr.startswith(".Values."):
        v = ctx["Values"]
        for key in expr[len(".Values.") :].split("."):
            if not isinstance(v, dict) or key not in v:
                raise RenderError(f"no value {expr}")
            v = v[key]
        return v
    raise RenderError(f"unsupported expression {expr!r}")


def evaluate(action, ctx, defines):
    stages = [s.strip() for s in action.split("|")]
    m = re.fullmatch(r'include "([^"]+)" \.', stages[0])
    if m:
        if m.group(1) not in defines:
            raise RenderError(f"include of undefined template {m.group(1)!r}")
        result = execute(defines[m.group(1)], ctx, defines)
    else:
        result = value(stages[0], ctx)
    for stage in stages[1:]:
        if stage == "quote":
            result = json.dumps(str(result))
        elif m2 := re.fullmatch(r"nindent (\d+)", stage):
            pad = " " * int(m2.group(1))
            result = "\n" + pad + str(result).replace("\n", "\n" + pad)
        else:
            raise RenderError(f"unsupported pipeline stage {stage!r}")
    return str(result)


def execute(toks, ctx, defines):
    out = []
    for kind, s in toks:
        if kind == "text":
            out.append(s)
        elif not s.startswith("/*"):
            out.append(evaluate(s, ctx, defines))
    return "".join(out)


def split_defines(toks):
    """(top-level tokens, {name: tokens}); define blocks do not nest here."""
    top, defines, current, name = [], {}, None, None
    for kind, s in toks:
        if kind == "action" and (m := re.fullmatch(r'define "([^"]+)"', s)):
            current, name = [], m.group(1)
        elif kind == "action" and s == "end":
            if current is None:
                raise RenderError("end without define")
            defines[name], current = current, None
        elif kind == "action" and re.match(r"(if|range|with|else|template)\b", s):
            raise RenderError(f"unsupported action {s!r}")
        elif current is not None:
            current.append((kind, s))
        else:
            top.append((kind, s))
    return top, defines


def render_helm(chart):
    ctx = {"Values": yaml.safe_load((chart / "values.yaml").read_text())}
    defines, templates = {}, []
    for path in sorted((chart / "templates").iterdir()):
        top, defs = split_defines(tokens(path.read_text()))
        defines.update(defs)
        if not path.name.startswith("_"):
            templates.append(top)
    docs = []
    for top in templates:
        docs += [d for d in yaml.safe_load_all(execute(top, ctx, defines)) if d]
    return sorted(docs, key=lambda d: KIND_ORDER.index(d["kind"]))


# --- check / write ---------------------------------------------------------


def literal_blocks(dumper, s):
    style = "|" if "\n" in s else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", s, style=style)


yaml.SafeDumper.add_representer(str, literal_blocks)


def dump(docs, source, command):
    head = (
        f"# Rendered from {source} by scripts/render-examples.py, as `{command}` would:\n"
        "# kept in sync by that script and validated with kubernetes-validate --strict\n"
        "# (scripts/validate-manifests.sh). Do not edit; edit the sources and run\n"
        "# scripts/render-examples.py --write.\n"
    )
    return head + "---\n".join(yaml.safe_dump(d, sort_keys=False, default_flow_style=False) for d in docs)


def main():
    write = sys.argv[1:] == ["--write"]
    if sys.argv[1:] and not write:
        sys.exit("usage: scripts/render-examples.py [--write]")
    try:
        outputs = [
            (KUSTOMIZE / "rendered.yaml", render_kustomize(KUSTOMIZE / "app"),
             "examples/kustomize/app", "kustomize build examples/kustomize/app"),
            (HELM / "rendered.yaml", render_helm(HELM),
             "examples/helm", "helm template app examples/helm"),
        ]
    except (RenderError, OSError, yaml.YAMLError) as e:
        sys.exit(f"render-examples: {e}")
    deployments = [[d for d in docs if d["kind"] == "Deployment"] for _, docs, _, _ in outputs]
    if deployments[0] != deployments[1]:
        sys.exit("render-examples: the kustomize component and the helm snippet render different Deployments")
    stale = 0
    for path, docs, source, command in outputs:
        text = dump(docs, source, command)
        rel = path.relative_to(ROOT)
        if write:
            path.write_text(text)
            print(f"wrote {rel}")
        elif not path.exists() or load_all(path) != docs:
            stale += 1
            old = path.read_text().splitlines() if path.exists() else []
            sys.stdout.writelines(l + "\n" for l in difflib.unified_diff(old, text.splitlines(), str(rel), "rendered now", lineterm=""))
            print(f"{rel} is out of date with {source}: run scripts/render-examples.py --write", file=sys.stderr)
        else:
            print(f"{rel}: matches {source}")
    sys.exit(1 if stale else 0)


if __name__ == "__main__":
    main()
