# The crate's file graph by definitions (run by .ci/run as `python3 .ci/file_cycles.py src`):
# File graph by definitions: file A -> file B when A names (in a `use`, a crate::/super:: path, or
# `module::item` where `module` is the file that defines `item`)
# an item that is defined in B. Re-exports do not count as definitions. Reports cycles.
import re, os, sys
root = sys.argv[1]
files = {}
for dp, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'):
            p = os.path.join(dp, f)
            files[os.path.relpath(p, root)] = p
def clean(text):
    text = re.sub(r'//[^\n]*', '', text)
    return re.sub(r'#\[cfg\(test\)\]\s*mod tests \{.*', '', text, flags=re.S)
defs = {}
src = {r: clean(open(p).read()) for r, p in files.items()}
for r, text in src.items():
    for kind, name in re.findall(r'^\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?(struct|enum|trait|fn|type|const|static)\s+([A-Za-z_]\w*)', text, re.M):
        defs.setdefault(name, set()).add(r)
    for name in re.findall(r'^\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?macro_rules!\s*(\w+)', text, re.M):
        defs.setdefault(name, set()).add(r)
edges = {r: set() for r in files}
for r, text in src.items():
    names = set()
    children = {os.path.basename(os.path.dirname(k)) if k.endswith('mod.rs') else os.path.basename(k)[:-3] for k in files if os.path.dirname(k) == os.path.dirname(r)} if r.endswith('mod.rs') or r == 'lib.rs' else set()
    # `pub use` re-exports a child's items (the module tree's own shape): not a dependency.
    for stmt in re.findall(r'^[ \t]*use\s+[^;]*;', text, re.S | re.M):
        first = re.match(r'\s*use\s+(\w+)', stmt).group(1)
        if first in ('crate', 'super', 'self') or first in children or os.path.exists(os.path.join(root, os.path.dirname(r), first + '.rs')) or os.path.exists(os.path.join(root, os.path.dirname(r), first, 'mod.rs')):
            names |= set(re.findall(r'\b([A-Za-z_]\w*)\b', stmt))
    for path in re.findall(r'\b(?:crate|super)(?:::\w+)+', text):
        names.add(path.split('::')[-1])
    # `module::item` after `use super::module` (or a child `mod module;`): the item of the file
    # of that module, when that file defines it.
    # (`use` lines are read above: a `pub use` re-export is not a dependency.)
    body = re.sub(r'^[ \t]*(?:pub(?:\([^)]*\))?\s+)?use\s+[^;]*;', '', text, flags=re.S | re.M)
    for module, item in re.findall(r'(?<![:\w])([a-z_]\w*)::([A-Za-z_]\w*)', body):
        for o in defs.get(item, set()):
            stem = os.path.basename(o)[:-3] if not o.endswith('mod.rs') else os.path.basename(os.path.dirname(o))
            if stem == module and o != r:
                edges[r].add(o)
                if '-why' in sys.argv: print(f"  {r} -> {o} because of {module}::{item}")
    stems = {os.path.basename(k)[:-3] for k in files} | {os.path.basename(os.path.dirname(k)) for k in files}
    for n in names - stems - {'crate', 'super', 'self', 'use', 'pub', 'as'}:
        owners = defs.get(n, set())
        if len(owners) == 1:
            (o,) = owners
            if o != r:
                edges[r].add(o)
                if '-why' in sys.argv: print(f"  {r} -> {o} because of {n}")
index = {}; low = {}; st = []; on = set(); c = [0]; out = []
sys.setrecursionlimit(10000)
def strong(v):
    index[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in index: strong(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: out.append(sorted(comp))
for v in files:
    if v not in index: strong(v)
if '-v' in sys.argv:
    for r in sorted(edges): print(f"{r} -> {', '.join(sorted(edges[r]))}")
print("cycles:", out if out else "none")
