"""The commands torch.utils.cpp_extension.load runs for an extension, without ninja and cached.

`plan(**load_kwargs)` calls the real `load()` with ninja's run step replaced by a stop, so
torch itself writes the build.ninja it would build with (same flags, same include order, same
ldflags); the compile and link commands are read back from that file. `syntax_check` runs a
compile command with `-fsyntax-only`; `build_module` runs compile + link and imports the
result. Both remember a success under build/ keyed by the commands and the content of the
sources and headers they name, so a second run costs nothing until something changes.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Iterable

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("MOE_MC2_EXT_BUILD", ROOT / "build" / "ext"))


class _Stop(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class Plan:
    build_dir: Path
    ninja: str  # the build.ninja torch wrote
    compile: dict  # source path -> (object file, shell command)
    link: tuple  # (library file, shell command)
    module_name: str  # TORCH_EXTENSION_NAME

    def compile_command(self, source: str) -> str:
        return self.compile[os.path.abspath(source)][1]


def _expand(text: str, scope: dict) -> str:
    def sub(m):
        if m.group(0) == "$$":
            return "$"
        if m.group(0) in ("$ ", "$:"):
            return m.group(0)[1]
        return scope.get(m.group(1) or m.group(2), "")
    return re.sub(r"\$\$|\$ |\$:|\$\{(\w+)\}|\$(\w+)", sub, text)


def _parse_ninja(text: str, build_dir: Path) -> tuple:
    variables, rules, builds = {}, {}, []
    rule = None
    for line in text.splitlines():
        if not line.strip():
            rule = None
            continue
        if line.startswith("rule "):
            rule = rules.setdefault(line.split()[1], {})
        elif line.startswith("  ") and rule is not None:
            key, _, value = line.strip().partition("=")
            rule[key.strip()] = value.strip()
        elif line.startswith("build "):
            outs, _, rest = line[len("build "):].partition(":")
            parts = rest.split()
            builds.append((outs.strip(), parts[0], parts[1:]))
        elif "=" in line and not line.startswith(" "):
            key, _, value = line.partition("=")
            variables[key.strip()] = _expand(value.strip(), variables)
    compile_cmds, link = {}, None
    for out, rule_name, ins in builds:
        scope = dict(variables, out=out, **{"in": " ".join(ins)})
        cmd = _expand(rules[rule_name]["command"], scope)
        if rule_name == "compile":
            compile_cmds[os.path.abspath(ins[0].replace("$ ", " "))] = (str(build_dir / out), cmd)
        elif rule_name == "link":
            link = (str(build_dir / out), cmd)
    name = re.search(r"-DTORCH_EXTENSION_NAME=(\w+)", variables.get("cflags", ""))
    return compile_cmds, link, name.group(1) if name else ""


_PLANS: dict = {}


def plan(name: str, sources: list, *, build_dir: Path, extra_include_paths=(), extra_cflags=(),
         extra_ldflags=()) -> Plan:
    """What `torch.utils.cpp_extension.load(name, sources, ...)` would run, read from its build.ninja."""
    from torch.utils import cpp_extension as ce

    key = (name, tuple(sources), str(build_dir), tuple(extra_include_paths), tuple(extra_cflags), tuple(extra_ldflags))
    if key in _PLANS:
        return _PLANS[key]
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / "lock").unlink(missing_ok=True)  # a killed earlier run would make load() wait forever

    def stop(*_a, **_k):
        raise _Stop

    saved = {k: getattr(ce, k) for k in ("_run_ninja_build", "verify_ninja_availability", "_import_module_from_library")}
    try:
        ce._run_ninja_build = stop
        ce.verify_ninja_availability = lambda: None
        ce._import_module_from_library = stop
        with contextlib.suppress(_Stop):
            ce.load(name, list(sources), extra_cflags=list(extra_cflags), extra_ldflags=list(extra_ldflags),
                    extra_include_paths=list(extra_include_paths), build_directory=str(build_dir), verbose=False)
    finally:
        for k, v in saved.items():
            setattr(ce, k, v)
    text = (build_dir / "build.ninja").read_text()
    compile_cmds, link, module = _parse_ninja(text, build_dir)
    _PLANS[key] = Plan(build_dir, text, compile_cmds, link, module)
    return _PLANS[key]


def _digest(parts: Iterable[str], files: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() + b"\0")
    for f in sorted({Path(f).resolve() for f in files}):
        h.update(str(f).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:20]


def _run(cmd: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, shell=True, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def syntax_check(p: Plan, source: str, inputs: Iterable[Path]) -> tuple:
    """(ok, compiler output): the source's compile command with -fsyntax-only. `inputs`: the files
    whose content decides the outcome besides the command (the project's own sources/headers)."""
    cmd = p.compile_command(source) + " -fsyntax-only"
    stamp = p.build_dir / f".syntax-ok-{_digest([cmd], [Path(source), *inputs])}"
    if stamp.is_file():
        return True, "(cached)"
    r = _run(cmd, p.build_dir)
    if r.returncode == 0:
        stamp.write_text(cmd)
    return r.returncode == 0, f"$ {cmd}\n{r.stdout}{r.stderr}"


def build_module(p: Plan, inputs: Iterable[Path]):
    """Compile and link every source as load() would, then import the module (cached)."""
    lib, link_cmd = p.link
    cmds = [c for _, c in p.compile.values()] + [link_cmd]
    digest = _digest(cmds, [*p.compile.keys(), *inputs])
    stamp = p.build_dir / ".built"  # the digest of what the library on disk was built from
    if not (os.path.isfile(lib) and stamp.is_file() and stamp.read_text() == digest):
        stamp.unlink(missing_ok=True)
        for obj, cmd in p.compile.values():
            r = _run(cmd, p.build_dir)
            if r.returncode != 0:
                raise RuntimeError(f"compile failed:\n$ {cmd}\n{r.stderr[-6000:]}")
        r = _run(link_cmd, p.build_dir)
        if r.returncode != 0:
            raise RuntimeError(f"link failed:\n$ {link_cmd}\n{r.stderr[-4000:]}")
        stamp.write_text(digest)
    spec = importlib.util.spec_from_file_location(p.module_name, lib)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_shared_object(source, out: Path, defines: Iterable[str] = (), *, includes: Iterable = (),
                        flags: Iterable[str] = (), inputs: Iterable[Path] = ()) -> Path:
    """A plain C++ shared object (no torch) from one source or a list of them, rebuilt when a
    source, a file of `inputs` (the headers they include) or the command changes."""
    sources = [Path(s) for s in (source if isinstance(source, (list, tuple)) else [source])]
    cmd = ["g++", "-std=c++17", "-O0", "-shared", "-fPIC", *flags, *[f"-D{d}" for d in defines],
           *[f"-I{i}" for i in includes], *[str(s) for s in sources], "-o", str(out)]
    digest = _digest(cmd, [*sources, *inputs])
    stamp = out.with_name(out.name + ".built")
    if not (out.is_file() and stamp.is_file() and stamp.read_text() == digest):
        out.parent.mkdir(parents=True, exist_ok=True)
        stamp.unlink(missing_ok=True)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"{shlex.join(cmd)}\n{r.stderr[-4000:]}")
        stamp.write_text(digest)
    return out


def cann_aclnn_include() -> str | None:
    """The folder holding CANN's `aclnn/acl_meta.h` in the open-source header tree that
    $CANN_INCLUDE names (opbase's include/nnopbase, see docs/kernel_model.md for the tree), or None."""
    root = os.environ.get("CANN_INCLUDE")
    if not root:
        return None
    folder = os.path.join(root, "opbase", "include", "nnopbase")
    return folder if os.path.isfile(os.path.join(folder, "aclnn", "acl_meta.h")) else None
