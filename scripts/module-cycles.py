#!/usr/bin/env python3
"""Fails on an import cycle between the top-level modules of a crate.

Usage: scripts/module-cycles.py CRATE_SRC_DIR...

A module's edges are the `crate::<module>` paths in its files (comments left out); a
cycle is a strongly connected group of more than one module. Each group found is
printed with the files and lines that close it.
"""
import pathlib
import re
import sys

PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")


def code(line):
    """The line without a `//` comment (one that starts the line or follows a space)."""
    stripped = line.lstrip()
    if stripped.startswith("//"):
        return ""
    cut = line.find(" //")
    return line if cut < 0 else line[:cut]


def edges_of(src):
    modules = {p.stem if p.is_file() else p.name for p in src.iterdir()
               if p.name not in ("lib.rs", "main.rs") and (p.suffix == ".rs" or p.is_dir())}
    edges = {m: {} for m in modules}
    for file in src.rglob("*.rs"):
        rel = file.relative_to(src)
        top = rel.parts[0].removesuffix(".rs")
        if top not in modules:
            continue
        for n, line in enumerate(file.read_text().splitlines(), 1):
            for target in PATH.findall(code(line)):
                if target in modules and target != top:
                    edges[top].setdefault(target, f"{rel}:{n}")
    return edges


def cycles(edges):
    """Tarjan's strongly connected components of more than one module."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def main(dirs):
    failed = False
    for d in dirs:
        src = pathlib.Path(d)
        edges = edges_of(src)
        for group in cycles(edges):
            failed = True
            print(f"{src}: import cycle between modules {', '.join(group)}:", file=sys.stderr)
            for a in group:
                for b, where in sorted(edges[a].items()):
                    if b in group:
                        print(f"  {a} -> {b} ({where})", file=sys.stderr)
        if not failed:
            print(f"{src}: no import cycle between its {len(edges)} modules")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
