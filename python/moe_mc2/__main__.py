"""Command line: `python -m moe_mc2 demo|bench ...`."""
from __future__ import annotations

import sys

USAGE = """usage: python -m moe_mc2 {demo,bench,kernel-sim,plan} [options]

  demo        run the op on ep x tp local CPU ranks and check every rank against the reference
  bench       measure comm only, compute only, the unfused sequence and the fused op
  kernel-sim  run the Ascend C kernel (op_kernel/) in the CPU model of the Ascend C API
  plan        the kernel's tile plan and the cost model's predicted timeline, bound and traffic

'python -m moe_mc2 COMMAND --help' lists each command's options."""


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "demo":
        from .demo import main as run
    elif cmd == "bench":
        from .bench import main as run
    elif cmd == "kernel-sim":
        from .kernel_sim import main as run
    elif cmd == "plan":
        from .plan import main as run
    else:
        print(f"unknown command {cmd!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    return run(rest)


if __name__ == "__main__":
    sys.exit(main())
